"""Amounts as staff type them ("999,00", "1 999.00") read into minor units, or refused.

One decimal separator, a point or a comma, is read as such; thousands may be grouped with
spaces (also no-break spaces) only. Anything a person could mean two ways is refused
rather than guessed: "1,999.00", "1.999,00", "9,99,9", and "1,999" or "1.999" in a currency
with fewer than three decimals (a thousand and some, or one and some?).
"""

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.money import minor_unit_exponent, to_minor_units

# Fifteen digits in minor units (9 999 999 999 999.99 RUB) is far above any price, and
# keeps every amount inside a 64-bit money column.
MAX_ENTRY_MINOR_UNITS = 10**15 - 1

# Spaces people and spreadsheets put between thousands: space, no-break, narrow no-break.
GROUP_SEPARATORS = " \u00a0\u202f"

_GROUPED = re.compile(rf"[0-9]{{1,3}}(?:[{GROUP_SEPARATORS}][0-9]{{3}})+")
# ASCII digits only: \d would take other scripts' digits too.
_DIGITS = re.compile(r"[0-9]+")


def _invalid() -> ValidationError:
    return ValidationError(
        _("Enter an amount such as 999,00, 999.00 or 1 999,00 (a space between thousands)."),
        code="invalid",
    )


def money_entry_parse(text: str, currency: str) -> int:
    """Return the amount typed in major units of `currency` as minor units, or raise ValidationError.

    Accepted: "999", "999.00", "999,00", "1 999,00", "1 999.00" (any of the spaces in
    GROUP_SEPARATORS between thousands). Refused, each with its own message: an empty
    entry, a negative or zero amount, both a point and a comma, more than one separator,
    a separator followed by three digits where the currency has fewer decimals, more
    decimals than the currency has, and amounts above MAX_ENTRY_MINOR_UNITS.
    """
    entry = text.strip(" \t\r\n" + GROUP_SEPARATORS)
    if not entry:
        raise ValidationError(_("Enter an amount."), code="required")
    if entry.startswith("-"):
        raise ValidationError(_("Enter an amount above zero."), code="not_positive")
    if "." in entry and "," in entry:
        raise ValidationError(
            _(
                "Use either a point or a comma before the decimals, not both; "
                "write thousands with a space: 1 999,00."
            ),
            code="ambiguous",
        )
    separators = entry.count(".") + entry.count(",")
    if separators > 1:
        raise ValidationError(
            _("Use one point or comma, before the decimals only; write thousands with a space: 1 999,00."),
            code="ambiguous",
        )
    whole, _separator, fraction = entry.replace(",", ".").partition(".")
    if not (_DIGITS.fullmatch(whole) or _GROUPED.fullmatch(whole)):
        raise _invalid()
    if separators and not _DIGITS.fullmatch(fraction):
        raise _invalid()
    places = minor_unit_exponent(currency)
    if len(fraction) == 3 and places < 3:
        raise ValidationError(
            _(
                "%(value)s could mean thousands or decimals: write thousands with a space "
                "(1 999) and decimals after a point or a comma (1,99)."
            ),
            code="ambiguous",
            params={"value": entry},
        )
    digits = re.sub(rf"[{GROUP_SEPARATORS}]", "", whole)
    try:
        minor = to_minor_units(Decimal(f"{digits}.{fraction or '0'}"), currency)
    except ValueError:
        if len(fraction.rstrip("0")) > places:
            raise ValidationError(
                ngettext_lazy(
                    "%(currency)s amounts have at most %(places)d decimal place.",
                    "%(currency)s amounts have at most %(places)d decimal places.",
                    "places",
                ),
                code="too_many_decimals",
                params={"currency": currency.upper(), "places": places},
            ) from None
        minor = MAX_ENTRY_MINOR_UNITS + 1  # too large for a money column: refused below
    if minor == 0:
        raise ValidationError(_("Enter an amount above zero."), code="not_positive")
    if minor > MAX_ENTRY_MINOR_UNITS:
        raise ValidationError(
            _("This amount is too large: at most %(max)s."),
            code="too_large",
            params={
                "max": f"{money_entry_format(MAX_ENTRY_MINOR_UNITS, currency, group=' ')} {currency.upper()}"
            },
        )
    return minor


def money_entry_format(amount: int, currency: str, *, decimal: str = ".", group: str = "") -> str:
    """Return minor units as a person types them: "999.00", or "1 999,00" with those separators."""
    places = minor_unit_exponent(currency)
    whole, fraction = divmod(amount, 10**places)
    digits = f"{whole:,}".replace(",", group)
    return f"{digits}{decimal}{fraction:0{places}d}" if places else digits
