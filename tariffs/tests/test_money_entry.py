"""Amounts as staff type them: the Russian and the English way in, anything ambiguous refused."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from tariffs.money_entry import MAX_ENTRY_MINOR_UNITS, money_entry_format, money_entry_parse

NBSP, NARROW_NBSP = "\u00a0", "\u202f"


def refusal(text: str, currency: str = "RUB") -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        money_entry_parse(text, currency)
    return caught.value


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("999,00", "RUB", 99900),
        ("999.00", "RUB", 99900),
        ("999", "RUB", 99900),
        ("  999,00 ", "RUB", 99900),
        ("999,5", "RUB", 99950),
        ("1 999,00", "RUB", 199900),
        ("1 999.00", "RUB", 199900),
        (f"1{NBSP}999,00", "RUB", 199900),
        (f"1{NARROW_NBSP}234{NARROW_NBSP}567,89", "RUB", 123456789),
        ("0,01", "RUB", 1),
        ("1 500", "JPY", 1500),
        ("1,500", "KWD", 1500),
        ("12.345", "KWD", 12345),
        ("4.99", "usd", 499),
    ],
)
def test_accepted_entries_are_read_in_the_currencys_minor_units(text, currency, minor):
    assert money_entry_parse(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1,999.00", "ambiguous"),
        ("1.999,00", "ambiguous"),
        ("9,99,9", "ambiguous"),
        ("1.999.000", "ambiguous"),
        ("1,999", "ambiguous"),
        ("1.999", "ambiguous"),
        ("999,0011", "too_many_decimals"),
        ("-999,00", "not_positive"),
        ("0", "not_positive"),
        ("0,00", "not_positive"),
        ("", "required"),
        ("   ", "required"),
        ("99 99", "invalid"),
        ("1 9999", "invalid"),
        ("999,", "invalid"),
        (",99", "invalid"),
        ("+999", "invalid"),
        ("1e3", "invalid"),
        ("999 RUB", "invalid"),
        ("٩٩٩", "invalid"),  # digits of another script
        ("10 000 000 000 000", "too_large"),
        ("9" * 40, "too_large"),
    ],
)
def test_ambiguous_or_impossible_entries_are_refused_with_a_reason(text, code):
    assert refusal(text).code == code


def test_refusals_tell_the_manager_what_to_type():
    assert refusal("1,999.00").messages == [
        "Use either a point or a comma before the decimals, not both; write thousands with a space: 1 999,00."
    ]
    assert refusal("1,999").messages == [
        "1,999 could mean thousands or decimals: write thousands with a space (1 999) "
        "and decimals after a point or a comma (1,99)."
    ]
    assert refusal("500,50", "JPY").messages == ["JPY amounts have at most 0 decimal places."]
    assert refusal("1,5", "JPY").messages == ["JPY amounts have at most 0 decimal places."]
    assert refusal("99999999999999").messages == [
        "This amount is too large: at most 9 999 999 999 999.99 RUB."
    ]


def test_the_largest_amount_is_accepted():
    assert money_entry_parse("9 999 999 999 999,99", "RUB") == MAX_ENTRY_MINOR_UNITS


@given(
    amount=st.integers(min_value=1, max_value=MAX_ENTRY_MINOR_UNITS),
    currency=st.sampled_from(["RUB", "USD", "JPY", "KWD"]),
    decimal=st.sampled_from([".", ","]),
    group=st.sampled_from(["", " ", NBSP, NARROW_NBSP]),
)
def test_any_amount_formatted_as_people_type_it_reads_back_the_same(amount, currency, decimal, group):
    text = money_entry_format(amount, currency, decimal=decimal, group=group)

    assert money_entry_parse(text, currency) == amount
