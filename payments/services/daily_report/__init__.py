"""The reconciliation report: our money of a range of UTC days against a provider's ledger of those days.

One provider at a time (the default one unless named). The range is one day (the daily report)
or several, both ends included, at most `MAX_REPORT_DAYS` (`days`). Our side is that provider's
payments whose money it took (succeeded, partially refunded or refunded) paid in the range, and
its refunds that succeeded with us in it (`succeeded_at`). The provider's side is its charges,
refunds and ledger entries created in the range, read through its gateway. Each pair is matched
by the provider's id and every difference is listed (`comparison` and `refunds`, over the days
of `window`, into the shapes of `shapes`); nothing is changed on either side.
"""

from payments.services.daily_report.comparison import (
    BOUNDARY_MARGIN,
    reconciliation_report,
    reconciliation_report_for_day,
)
from payments.services.daily_report.days import (
    MAX_REPORT_DAYS,
    ReportRangeError,
    reconciliation_last_active_day,
    reconciliation_range_check,
)
from payments.services.daily_report.refunds import REFUND_NOT_ISSUED
from payments.services.daily_report.shapes import (
    AMOUNT_DIFFERS,
    BALANCE_ENTRY_DIFFERS,
    BALANCE_ENTRY_MISSING,
    CURRENCY_DIFFERS,
    MISMATCH_LABELS,
    MISSING_AT_PROVIDER,
    MISSING_WITH_US,
    OBJECT_LABELS,
    OTHER_DAY,
    PAYMENT,
    REFUND,
    REFUNDED_DIFFERS,
    STATUS_DIFFERS,
    CurrencyTotals,
    Mismatch,
    ReconciliationReport,
    provider_label,
)

__all__ = [
    "AMOUNT_DIFFERS",
    "BALANCE_ENTRY_DIFFERS",
    "BALANCE_ENTRY_MISSING",
    "BOUNDARY_MARGIN",
    "CURRENCY_DIFFERS",
    "MAX_REPORT_DAYS",
    "MISMATCH_LABELS",
    "MISSING_AT_PROVIDER",
    "MISSING_WITH_US",
    "OBJECT_LABELS",
    "OTHER_DAY",
    "PAYMENT",
    "REFUND",
    "REFUNDED_DIFFERS",
    "REFUND_NOT_ISSUED",
    "STATUS_DIFFERS",
    "CurrencyTotals",
    "Mismatch",
    "ReconciliationReport",
    "ReportRangeError",
    "provider_label",
    "reconciliation_last_active_day",
    "reconciliation_range_check",
    "reconciliation_report",
    "reconciliation_report_for_day",
]
