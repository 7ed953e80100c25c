"""Filters of the notice emails: money, dates and cards written the way the reader's language does.

They format in the language that is active while the email is rendered (`translation.override`).
"""

from datetime import datetime

from django import template
from django.utils import dateformat, translation
from django.utils.dateparse import parse_datetime

from core.money import format_money

register = template.Library()

CARD_BRANDS = {
    "amex": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "mir": "Mir",
    "unionpay": "UnionPay",
    "visa": "Visa",
}
CARD_BRANDS_RU = {**CARD_BRANDS, "mir": "Мир"}
# Russian writes long dates with the month in the genitive (1 марта 2027): Django's "E".
DATE_FORMATS = {"ru": "j E Y"}
DEFAULT_DATE_FORMAT = "j F Y"


def _russian() -> bool:
    return (translation.get_language() or "en").startswith("ru")


@register.filter
def money(amount: int | None, currency: str) -> str:
    """Write minor units as an amount: 399000 RUB is "3,990.00 RUB", in Russian "3 990,00 ₽"."""
    if amount is None:
        return ""
    return format_money(int(amount), currency)


def _instant(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else parse_datetime(value)


@register.filter
def day(value: str | datetime | None) -> str:
    """Write an instant (ISO 8601 or datetime) as a date in UTC: "1 March 2027", "1 марта 2027"."""
    instant = _instant(value)
    if instant is None:
        return ""
    language = "ru" if _russian() else "en"
    return dateformat.format(instant, DATE_FORMATS.get(language, DEFAULT_DATE_FORMAT))


@register.filter
def moment(value: str | datetime | None) -> str:
    """Write an instant as a date and time in UTC: "1 March 2027, 09:00 UTC"."""
    instant = _instant(value)
    if instant is None:
        return ""
    return f"{day(instant)}, {dateformat.format(instant, 'H:i')} UTC"


@register.filter
def card(brand: str | None, last4: str | None) -> str:
    """Write a card as the provider reports it: brand and last four digits, "Visa •••• 4242"."""
    if not last4:
        return ""
    names = CARD_BRANDS_RU if _russian() else CARD_BRANDS
    label = names.get((brand or "").lower(), (brand or "").title()) or "Card"
    return f"{label} •••• {last4}"
