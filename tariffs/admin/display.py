"""How the catalogue's admin words periods, prices and how long a discount lasts."""

from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.money import format_money
from tariffs.models import PeriodUnit


def period_display(unit: str, count: int) -> str:
    """Return a billing period as people say it: "1 month", "12 months", "1 year"."""
    if unit == PeriodUnit.YEAR:
        return ngettext("%(count)d year", "%(count)d years", count) % {"count": count}
    return ngettext("%(count)d month", "%(count)d months", count) % {"count": count}


def price_in_words(amount: int, currency: str, unit: str, count: int) -> str:
    """Return a price with its period as people say it: "999.00 RUB every 3 months"."""
    if count == 1:
        every = gettext("every year") if unit == PeriodUnit.YEAR else gettext("every month")
    elif unit == PeriodUnit.YEAR:
        every = ngettext("every %(count)d year", "every %(count)d years", count) % {"count": count}
    else:
        every = ngettext("every %(count)d month", "every %(count)d months", count) % {"count": count}
    return f"{format_money(amount, currency)} {every}"


def promo_duration_display(periods: int | None) -> str:
    """Return how long a discount lasts: "first period", "3 periods", "every period"."""
    if periods is None:
        return str(_("every period"))
    if periods == 1:
        return str(_("first period"))
    return ngettext("first %(count)d period", "first %(count)d periods", periods) % {"count": periods}
