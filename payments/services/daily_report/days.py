"""The reconciliation report's range rules: which ranges of UTC days it is made for.

The range is one day (the daily report) or several, both ends included, at most
`MAX_REPORT_DAYS`; with none asked for, the report opens on the last active day.
"""

from datetime import UTC, date

from django.utils.translation import gettext_lazy as _

from core import clock
from core.days import day_check
from payments.models import PAID_STATUSES, Payment, Refund, RefundStatus
from payments.services.daily_report.shapes import provider_label

# The longest range one report reads: the provider's listings are read within the admin's request.
MAX_REPORT_DAYS = 31


class ReportRangeError(ValueError):
    """A range the report cannot be made for; the message says why, for the person who chose it."""


def reconciliation_range_check(*, date_from: date, date_to: date, provider: str) -> None:
    """Raise ReportRangeError unless the range is one the report on `provider` can be made for."""
    try:
        day_check(date_from)
        day_check(date_to)
    except ValueError as exc:
        raise ReportRangeError(_("Enter the day as YYYY-MM-DD.")) from exc
    if date_to < date_from:
        raise ReportRangeError(_("The end of the range must not come before its start."))
    if (date_to - date_from).days + 1 > MAX_REPORT_DAYS:
        raise ReportRangeError(
            _("Choose at most %(days)d days: %(provider)s's records are read while the page loads.")
            % {"days": MAX_REPORT_DAYS, "provider": provider_label(provider)}
        )


def reconciliation_last_active_day(*, provider: str | None = None) -> date:
    """Return the last UTC day on which we took a payment or paid back a refund, up to now.

    Through `provider` only, when one is named. The day the report opens on when none is
    asked for; today when nothing ever happened.
    """
    now = clock.now()
    through = {"provider": provider} if provider else {}
    last_paid = (
        Payment.objects.filter(status__in=PAID_STATUSES, paid_at__lte=now, **through)
        .order_by("-paid_at")
        .values_list("paid_at", flat=True)
        .first()
    )
    last_refunded = (
        Refund.objects.filter(status=RefundStatus.SUCCEEDED, succeeded_at__lte=now, **through)
        .order_by("-succeeded_at")
        .values_list("succeeded_at", flat=True)
        .first()
    )
    moments = [moment for moment in (last_paid, last_refunded) if moment is not None]
    return max(moments, default=now).astimezone(UTC).date()
