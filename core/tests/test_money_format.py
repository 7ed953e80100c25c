"""Amounts read the way the page's language writes money: "3,990.00 RUB" in English, "3 990,00 ₽" in Russian."""

import pytest
from django.template import Context, Template
from django.utils import translation

from core.money import format_money

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("amount", "currency", "english", "russian"),
    [
        (399000, "RUB", "3,990.00 RUB", f"3{NBSP}990,00{NBSP}₽"),
        (39900, "rub", "399.00 RUB", f"399,00{NBSP}₽"),
        (123456789, "RUB", "1,234,567.89 RUB", f"1{NBSP}234{NBSP}567,89{NBSP}₽"),
        (1250, "USD", "12.50 USD", f"12,50{NBSP}USD"),
        (100000, "EUR", "1,000.00 EUR", f"1{NBSP}000,00{NBSP}EUR"),
        (1500, "JPY", "1,500 JPY", f"1{NBSP}500{NBSP}JPY"),
        (500, "JPY", "500 JPY", f"500{NBSP}JPY"),
        (1234, "KWD", "1.234 KWD", f"1,234{NBSP}KWD"),
        (0, "RUB", "0.00 RUB", f"0,00{NBSP}₽"),
        (-1550, "RUB", "-15.50 RUB", f"-15,50{NBSP}₽"),
    ],
)
def test_money_is_written_the_way_each_language_writes_it(amount, currency, english, russian):
    assert format_money(amount, currency, language="en") == english
    assert format_money(amount, currency, language="ru") == russian


def test_the_active_language_is_used_when_none_is_given():
    with translation.override("ru"):
        assert format_money(399000, "RUB") == f"3{NBSP}990,00{NBSP}₽"
    with translation.override("en"):
        assert format_money(399000, "RUB") == "3,990.00 RUB"
    # An explicit language wins over the active one.
    with translation.override("ru"):
        assert format_money(399000, "RUB", language="en") == "3,990.00 RUB"


def test_the_template_filter_writes_money_the_same_way():
    template = Template("{% load notice_format %}{{ amount|money:currency }}")
    with translation.override("ru"):
        assert template.render(Context({"amount": 399000, "currency": "RUB"})) == f"3{NBSP}990,00{NBSP}₽"
        assert template.render(Context({"amount": 1500, "currency": "JPY"})) == f"1{NBSP}500{NBSP}JPY"
    with translation.override("en"):
        assert template.render(Context({"amount": 1250, "currency": "USD"})) == "12.50 USD"
        assert template.render(Context({"amount": None, "currency": "USD"})) == ""
