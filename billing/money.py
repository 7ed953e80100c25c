"""Money is an integer amount of minor units and an ISO 4217 currency code.

These helpers only *present* amounts; arithmetic stays on integers everywhere else.
"""

from decimal import Decimal

# Currencies whose minor unit is the major unit (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL_CURRENCIES = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
# Currencies with three decimals that Stripe supports.
THREE_DECIMAL_CURRENCIES = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])

CURRENCY_CODE_REGEX = r"^[A-Z]{3}$"


def minor_unit_exponent(currency: str) -> int:
    """Return how many decimal places the currency's minor unit has."""
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def to_major_units(amount: int, currency: str) -> Decimal:
    """Return the amount in major units as an exact Decimal (12345 RUB → 123.45)."""
    return Decimal(amount).scaleb(-minor_unit_exponent(currency))


def format_money(amount: int, currency: str) -> str:
    """Return a human-readable amount such as "399.00 RUB" or "500 JPY"."""
    exponent = minor_unit_exponent(currency)
    return f"{to_major_units(amount, currency):,.{exponent}f} {currency.upper()}"
