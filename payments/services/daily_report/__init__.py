"""The reconciliation report: our money of a range of UTC days against Stripe's ledger of those days.

The range is one day (the daily report) or several, both ends included, at most
`MAX_REPORT_DAYS` (`days`). Our side is the payments Stripe captured (succeeded, partially
refunded or refunded) paid in the range, and the refunds that succeeded with us in it
(`succeeded_at`). Stripe's side is the charges, refunds and balance transactions created in the
range, read through the gateway. Each pair is matched by Stripe id and every difference is
listed (`comparison`, into the shapes of `shapes`); nothing is changed on either side.
"""

from payments.services.daily_report.comparison import (
    BOUNDARY_MARGIN,
    STRIPE_REFUND_ISSUED,
    reconciliation_report,
    reconciliation_report_for_day,
)
from payments.services.daily_report.days import (
    MAX_REPORT_DAYS,
    ReportRangeError,
    reconciliation_last_active_day,
    reconciliation_range_check,
)
from payments.services.daily_report.shapes import (
    AMOUNT_DIFFERS,
    BALANCE_TRANSACTION_DIFFERS,
    BALANCE_TRANSACTION_MISSING,
    CURRENCY_DIFFERS,
    MISMATCH_LABELS,
    MISSING_AT_STRIPE,
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
)

__all__ = [
    "AMOUNT_DIFFERS",
    "BALANCE_TRANSACTION_DIFFERS",
    "BALANCE_TRANSACTION_MISSING",
    "BOUNDARY_MARGIN",
    "CURRENCY_DIFFERS",
    "MAX_REPORT_DAYS",
    "MISMATCH_LABELS",
    "MISSING_AT_STRIPE",
    "MISSING_WITH_US",
    "OBJECT_LABELS",
    "OTHER_DAY",
    "PAYMENT",
    "REFUND",
    "REFUNDED_DIFFERS",
    "STATUS_DIFFERS",
    "STRIPE_REFUND_ISSUED",
    "CurrencyTotals",
    "Mismatch",
    "ReconciliationReport",
    "ReportRangeError",
    "reconciliation_last_active_day",
    "reconciliation_range_check",
    "reconciliation_report",
    "reconciliation_report_for_day",
]
