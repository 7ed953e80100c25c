"""Reads behind the accounting dashboard: every figure is one SQL aggregate over our own rows.

Definitions (also shown on the page):

- **Revenue** is gross: the full amount of every payment that was paid (succeeded, partially
  refunded or refunded), counted on the UTC day or month of `paid_at`. What was refunded from
  those same payments is shown next to it, and net = gross - refunded. Refunds as money that
  left us are a separate series, by the UTC month the refund succeeded (`Refund.succeeded_at`).
- **MRR** counts active and past-due subscriptions (past due: still a subscriber, in dunning or
  its grace period; trials pay nothing yet) at the price locked at signup, normalised to a
  month: a yearly price is divided by 12, a price charged every N periods by N. Promo discounts
  are left out. Subscriptions set to end at their period end still count until they end.
- **New** subscriptions are those that started (trial or first paid period), counted in the
  month they were created; abandoned checkouts never started and are not counted.
- **Churned** subscriptions are started ones that ended (`ended_at`) in the month.
  Voluntary: the viewer (or staff, for a refund that ended access) canceled, or the viewer
  turned autopay off. Involuntary: the subscription ran out of dunning (renewal declined and
  not recovered), which is the only way an autopay subscription ends without a cancel.
- **Dunning recovery**: renewal payments with at least one declined charge
  (`failed_attempts > 0`), by the UTC month the renewal fell due (`period_start`). Recovered:
  the payment was paid in the end; lost: not paid and its subscription has ended; open: not
  paid and still retrying. Rate = recovered / (recovered + lost), so months still in dunning
  are not shown as lost. A renewal that only needed the card holder's confirmation (3-D
  Secure) records no decline, so it is not counted.

The queries count a non-null column the dashboard's indexes hold rather than the primary key,
so PostgreSQL answers them from those indexes alone (index-only scans, already in group order).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DateTimeField, Q, Sum
from django.db.models.functions import TruncDay, TruncMonth

from billing.models import Subscription, SubscriptionStatus
from core.days import utc_midnight
from payments.models import PAID_STATUSES, Payment, PaymentKind, Refund, RefundStatus
from tariffs.models import PeriodUnit

S = SubscriptionStatus

# The payments whose money we received, whatever was refunded from them later.
MRR_STATUSES = (S.ACTIVE, S.PAST_DUE)
ENDED_STATUSES = (S.CANCELED, S.EXPIRED)
DEFAULT_DAYS = 30
DEFAULT_MONTHS = 12


@dataclass(frozen=True)
class Window:
    """The UTC days and months a dashboard shows: [start, end) each, ending with today's."""

    days: list[date]
    months: list[date]

    @property
    def day_start(self) -> datetime:
        return utc_midnight(self.days[0])

    @property
    def day_end(self) -> datetime:
        return utc_midnight(self.days[-1] + timedelta(days=1))

    @property
    def month_start(self) -> datetime:
        return utc_midnight(self.months[0])

    @property
    def month_end(self) -> datetime:
        return utc_midnight(_next_month(self.months[-1]))


@dataclass(frozen=True)
class RevenueRow:
    period: date
    currency: str
    payments: int
    gross: int
    refunded: int

    @property
    def net(self) -> int:
        return self.gross - self.refunded


@dataclass(frozen=True)
class RefundRow:
    period: date
    currency: str
    refunds: int
    amount: int


@dataclass(frozen=True)
class MrrRow:
    currency: str
    subscriptions: int
    # Minor units per month, rounded half up to a whole minor unit.
    mrr: int


@dataclass(frozen=True)
class Subscribers:
    trialing: int
    active: int
    past_due: int

    @property
    def paying(self) -> int:
        return self.active + self.past_due


@dataclass(frozen=True)
class FlowRow:
    month: date
    new: int
    churned_voluntary: int
    churned_involuntary: int

    @property
    def churned(self) -> int:
        return self.churned_voluntary + self.churned_involuntary


@dataclass(frozen=True)
class DunningRow:
    month: date
    entered: int
    recovered: int
    lost: int

    @property
    def open(self) -> int:
        return self.entered - self.recovered - self.lost

    @property
    def recovery_rate(self) -> Decimal | None:
        """Return recovered / (recovered + lost) as a fraction, None when nothing is settled."""
        settled = self.recovered + self.lost
        return Decimal(self.recovered) / settled if settled else None


@dataclass(frozen=True)
class Dashboard:
    window: Window
    revenue_daily: list[RevenueRow]
    revenue_monthly: list[RevenueRow]
    refunds_monthly: list[RefundRow]
    mrr: list[MrrRow]
    subscribers: Subscribers
    flow: list[FlowRow]
    dunning: list[DunningRow]
    currencies: list[str] = field(default_factory=list)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def dashboard_window(*, now: datetime, days: int = DEFAULT_DAYS, months: int = DEFAULT_MONTHS) -> Window:
    """Return the last `days` UTC days and `months` UTC months, today's and this month's included."""
    today = now.astimezone(UTC).date()
    month = today.replace(day=1)
    month_list = [month]
    for _ in range(months - 1):
        previous = month_list[0] - timedelta(days=1)
        month_list.insert(0, previous.replace(day=1))
    return Window(
        days=[today - timedelta(days=offset) for offset in range(days - 1, -1, -1)], months=month_list
    )


def _utc_day(field_name: str) -> TruncDay:
    return TruncDay(field_name, tzinfo=UTC, output_field=DateTimeField())


def _utc_month(field_name: str) -> TruncMonth:
    return TruncMonth(field_name, tzinfo=UTC, output_field=DateTimeField())


def revenue_by_period(*, start: datetime, end: datetime, monthly: bool) -> list[RevenueRow]:
    """Return paid payments' gross amount and what was refunded from them, per UTC day or month and currency."""
    period = _utc_month("paid_at") if monthly else _utc_day("paid_at")
    # Filtered on the truncated time, which equals filtering on paid_at for a window cut at
    # UTC days or months, and lets payment_revenue_day_idx/_month_idx serve the whole query.
    rows = (
        Payment.objects.filter(status__in=PAID_STATUSES)
        .annotate(period=period)
        .filter(period__gte=start, period__lt=end)
        .values("period", "currency")
        .annotate(payments=Count("amount"), gross=Sum("amount"), refunded=Sum("refunded_amount"))
        .order_by("period", "currency")
    )
    return [
        RevenueRow(
            period=_as_date(row["period"]),
            currency=row["currency"],
            payments=row["payments"],
            gross=row["gross"],
            refunded=row["refunded"],
        )
        for row in rows
    ]


def refunds_by_month(*, start: datetime, end: datetime) -> list[RefundRow]:
    """Return succeeded refunds per UTC month they succeeded in and currency."""
    rows = (
        Refund.objects.filter(status=RefundStatus.SUCCEEDED, succeeded_at__gte=start, succeeded_at__lt=end)
        .annotate(period=_utc_month("succeeded_at"))
        .values("period", "currency")
        .annotate(refunds=Count("pk"), amount=Sum("amount"))
        .order_by("period", "currency")
    )
    return [
        RefundRow(
            period=_as_date(row["period"]),
            currency=row["currency"],
            refunds=row["refunds"],
            amount=row["amount"],
        )
        for row in rows
    ]


def _months_per_charge(unit: str, count: int) -> int:
    return count * (12 if unit == PeriodUnit.YEAR else 1)


def mrr_by_currency() -> list[MrrRow]:
    """Return the monthly recurring revenue of active and past-due subscriptions, per currency.

    The database sums prices per currency and billing period; only those few sums are
    divided down to a month here, exactly, and rounded once per currency.
    """
    groups = (
        Subscription.objects.filter(status__in=MRR_STATUSES)
        .values("currency", "tariff__period_unit", "tariff__period_count")
        .annotate(subscriptions=Count("amount"), total=Sum("amount"))
        .order_by()
    )
    per_currency: dict[str, tuple[int, Decimal]] = {}
    for group in groups:
        months = _months_per_charge(group["tariff__period_unit"], group["tariff__period_count"])
        count, mrr = per_currency.get(group["currency"], (0, Decimal(0)))
        per_currency[group["currency"]] = (
            count + group["subscriptions"],
            mrr + Decimal(group["total"]) / months,
        )
    return [
        MrrRow(
            currency=currency,
            subscriptions=count,
            mrr=int(mrr.quantize(Decimal(1), rounding=ROUND_HALF_UP)),
        )
        for currency, (count, mrr) in sorted(per_currency.items())
    ]


def subscriber_counts() -> Subscribers:
    """Return how many subscriptions are trialing, active and past due now."""
    counts = Subscription.objects.filter(status__in=(S.TRIALING, S.ACTIVE, S.PAST_DUE)).aggregate(
        trialing=Count("status", filter=Q(status=S.TRIALING)),
        active=Count("status", filter=Q(status=S.ACTIVE)),
        past_due=Count("status", filter=Q(status=S.PAST_DUE)),
    )
    return Subscribers(**counts)


# Started: a trial or a paid first period began. A subscription canceled while pending never did.
STARTED = Q(billing_anchor__isnull=False)
VOLUNTARY = Q(canceled_at__isnull=False) | Q(autopay=False)


def subscription_flow_by_month(*, start: datetime, end: datetime) -> list[FlowRow]:
    """Return per UTC month the subscriptions that started and those that ended, voluntarily or not."""
    new = dict(
        Subscription.objects.filter(STARTED)
        .annotate(month=_utc_month("created_at"))
        .filter(month__gte=start, month__lt=end)
        .values("month")
        .annotate(count=Count("created_at"))
        .order_by()
        .values_list("month", "count")
    )
    churned = {
        row["month"]: row
        for row in Subscription.objects.filter(
            STARTED, status__in=ENDED_STATUSES, ended_at__gte=start, ended_at__lt=end
        )
        .annotate(month=_utc_month("ended_at"))
        .values("month")
        .annotate(
            voluntary=Count("pk", filter=VOLUNTARY),
            involuntary=Count("pk", filter=~VOLUNTARY),
        )
        .order_by()
    }
    months = sorted({_as_date(month) for month in [*new, *churned]})
    new_by_date = {_as_date(month): count for month, count in new.items()}
    churned_by_date = {_as_date(month): row for month, row in churned.items()}
    return [
        FlowRow(
            month=month,
            new=new_by_date.get(month, 0),
            churned_voluntary=churned_by_date[month]["voluntary"] if month in churned_by_date else 0,
            churned_involuntary=churned_by_date[month]["involuntary"] if month in churned_by_date else 0,
        )
        for month in months
    ]


def dunning_by_month(*, start: datetime, end: datetime) -> list[DunningRow]:
    """Return per UTC month of the renewal's due date the declined renewals, recovered and lost."""
    rows = (
        Payment.objects.filter(kind=PaymentKind.RENEWAL, failed_attempts__gt=0)
        .annotate(month=_utc_month("period_start"))
        .filter(month__gte=start, month__lt=end)
        .values("month")
        .annotate(
            entered=Count("status"),
            recovered=Count("status", filter=Q(status__in=PAID_STATUSES)),
            lost=Count(
                "status",
                filter=~Q(status__in=PAID_STATUSES) & Q(subscription__status__in=ENDED_STATUSES),
            ),
        )
        .order_by("month")
    )
    return [
        DunningRow(
            month=_as_date(row["month"]), entered=row["entered"], recovered=row["recovered"], lost=row["lost"]
        )
        for row in rows
    ]


def _currencies(*groups: Iterable[RevenueRow | RefundRow | MrrRow]) -> list[str]:
    return sorted({row.currency for rows in groups for row in rows})


def dashboard_figures(*, now: datetime, days: int = DEFAULT_DAYS, months: int = DEFAULT_MONTHS) -> Dashboard:
    """Return every figure of the accounting dashboard for the window ending `now` (8 queries)."""
    window = dashboard_window(now=now, days=days, months=months)
    revenue_daily = revenue_by_period(start=window.day_start, end=window.day_end, monthly=False)
    revenue_monthly = revenue_by_period(start=window.month_start, end=window.month_end, monthly=True)
    refunds = refunds_by_month(start=window.month_start, end=window.month_end)
    mrr = mrr_by_currency()
    return Dashboard(
        window=window,
        revenue_daily=revenue_daily,
        revenue_monthly=revenue_monthly,
        refunds_monthly=refunds,
        mrr=mrr,
        subscribers=subscriber_counts(),
        flow=subscription_flow_by_month(start=window.month_start, end=window.month_end),
        dunning=dunning_by_month(start=window.month_start, end=window.month_end),
        currencies=_currencies(revenue_daily, revenue_monthly, refunds, mrr),
    )
