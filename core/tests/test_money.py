"""Prices typed in major units become exact integer minor units, or are refused."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import MAX_MINOR_UNITS, format_money, to_major_units, to_minor_units


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("399.00", "RUB", 39900),
        ("399", "RUB", 39900),
        ("399.5", "RUB", 39950),
        ("0.01", "RUB", 1),
        ("399.000", "RUB", 39900),
        ("1E+3", "RUB", 100000),
        ("500", "JPY", 500),
        ("500.00", "JPY", 500),
        ("1.234", "KWD", 1234),
        ("4.99", "usd", 499),
        ("0", "RUB", 0),
    ],
)
def test_exact_amount_converts_to_minor_units(amount, currency, minor):
    assert to_minor_units(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("399.001", "RUB"), ("0.001", "RUB"), ("500.5", "JPY"), ("1.2345", "KWD"), ("1E-999999999", "RUB")],
)
def test_more_decimals_than_the_currency_allows_is_refused(amount, currency):
    with pytest.raises(ValueError, match="decimal places"):
        to_minor_units(Decimal(amount), currency)


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_amount_is_refused(amount):
    with pytest.raises(ValueError, match="not a finite amount"):
        to_minor_units(Decimal(amount), "RUB")


def test_amount_beyond_a_money_column_is_refused():
    assert to_minor_units(Decimal("92233720368547758.07"), "RUB") == MAX_MINOR_UNITS
    with pytest.raises(ValueError, match="too large"):
        to_minor_units(Decimal("92233720368547758.08"), "RUB")
    with pytest.raises(ValueError, match="too large"):
        to_minor_units(Decimal("1E+999999999"), "RUB")


def test_many_digits_are_not_rounded():
    # More digits than the default Decimal precision (28): nothing may be rounded away.
    amount = Decimal("1234567890.12345678901234567890000000")
    with pytest.raises(ValueError, match="decimal places"):
        to_minor_units(amount, "RUB")
    assert to_minor_units(Decimal("12345678901234567.89"), "RUB") == 1234567890123456789


def test_negative_amount_keeps_its_sign():
    assert to_minor_units(Decimal("-1.50"), "RUB") == -150


@given(
    minor=st.integers(min_value=0, max_value=MAX_MINOR_UNITS),
    currency=st.sampled_from(["RUB", "USD", "JPY", "KWD"]),
)
def test_round_trip_through_major_units_is_exact(minor, currency):
    assert to_minor_units(to_major_units(minor, currency), currency) == minor


def test_formatted_price_reads_back_as_the_same_amount():
    assert format_money(39900, "RUB") == "399.00 RUB"
    assert to_minor_units(Decimal(format_money(39900, "RUB").split()[0]), "RUB") == 39900
