"""Money is an integer amount of minor units and an ISO 4217 currency code.

These helpers only *present* amounts; arithmetic stays on integers everywhere else.
`format_money` is the one place an amount becomes text for people: admin pages, reports and
(through the `money` template filter) emails call it, in the language active at the time.
"""

from decimal import Decimal

from django.utils import translation

# Currencies whose minor unit is the major unit (zero-decimal currencies, as the card networks and providers list them).
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
# Currencies with three decimals.
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


NBSP = "\u00a0"
# Russian writes the rouble as its sign; other currencies keep their unambiguous ISO code
# ("12,50 USD", not "12,50 $", which could be any dollar).
RUSSIAN_CURRENCY_SIGNS = {"RUB": "₽"}


def format_money(amount: int, currency: str, *, language: str | None = None) -> str:
    """Return an amount written the way `language` (by default the active one) writes money.

    English: "3,990.00 RUB", "500 JPY". Russian: "3 990,00 ₽", "12,50 USD", "500 JPY", with a
    no-break space between thousands and before the currency, and a decimal comma.
    """
    code = currency.upper()
    digits = f"{to_major_units(amount, code):,.{minor_unit_exponent(code)}f}"
    if (language or translation.get_language() or "en").lower().startswith("ru"):
        digits = digits.replace(",", NBSP).replace(".", ",")
        return f"{digits}{NBSP}{RUSSIAN_CURRENCY_SIGNS.get(code, code)}"
    return f"{digits} {code}"


# The largest amount a money column (a signed 64-bit integer) can hold.
MAX_MINOR_UNITS = 2**63 - 1


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Return the amount in minor units as an exact integer (123.45 RUB → 12345).

    Trailing zeros are exact and accepted (123.450 RUB → 12345). Raise ValueError when
    the amount has more decimals than the currency allows (123.456 RUB), since rounding
    would change the price, and when it is not finite or too large for a money column.
    """
    sign, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{amount} is not a finite amount")
    places = minor_unit_exponent(currency)
    # Work on the digits, not with Decimal arithmetic: that rounds at the context's
    # precision, and huge exponents must be refused before any power of ten is built.
    significant = "".join(map(str, digits)).lstrip("0")
    if not significant:
        return 0
    shift = exponent + places
    if shift < 0:
        if len(significant) - len(significant.rstrip("0")) < -shift:
            raise ValueError(f"{amount} has more than {places} decimal places for {currency.upper()}")
        minor = int(significant[:shift])
    elif len(significant) + shift > len(str(MAX_MINOR_UNITS)):
        raise ValueError(f"{amount} {currency.upper()} is too large")
    else:
        minor = int(significant) * 10**shift
    if minor > MAX_MINOR_UNITS:
        raise ValueError(f"{amount} {currency.upper()} is too large")
    return -minor if sign else minor
