"""Reads of the books for accounting: trial balance, deferred revenue's schedule, revenue by month.

Every figure is an SQL aggregate over the day totals (what each UTC day's postings add up to
per account and kind of entry, kept by the database: ledger.models.DayTotal) or the recognition
plans, grouped by currency: amounts in different currencies are never added together. Reading
the day totals keeps a report's cost to about one row per account and day, however many
postings the books hold. Months and days are UTC.
Postings are signed (debit +, credit -); the reports show each balance on its account's normal
side (`accounts_chart.normal_side`), so deferred revenue and revenue read as positive credits.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any

from django.db.models import BigIntegerField, DateField, F, Func, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Least, TruncMonth

from core.days import utc_midnight
from ledger import accounts_chart as chart
from ledger.models import DayTotal, EntryKind, LedgerAccount, Posting, RecognitionPlan

CLEARING_PREFIX = chart.provider_clearing("")
# The order accounts are listed in: what we hold, what we spent, then what we owe and earned.
_CHART_ORDER = (
    CLEARING_PREFIX,
    chart.payouts(""),
    chart.PROVIDER_FEES,
    chart.REFUNDS,
    chart.DEFERRED_REVENUE,
    chart.REVENUE,
)


@dataclass(frozen=True)
class BalanceLine:
    """One account's balance in one currency: `net` is signed (debit +), the rest shown positive."""

    code: str
    currency: str
    net: int

    @property
    def normal_side(self) -> chart.NormalSide:
        return chart.normal_side(self.code)

    @property
    def debit(self) -> int:
        """Return the balance when it is a debit balance, else 0 (the trial balance's debit column)."""
        return max(self.net, 0)

    @property
    def credit(self) -> int:
        """Return the balance when it is a credit balance, else 0 (shown positive)."""
        return max(-self.net, 0)

    @property
    def balance(self) -> int:
        """Return the balance on the account's normal side: negative only when it is the wrong way round."""
        return self.net if self.normal_side == "debit" else -self.net


@dataclass(frozen=True)
class TrialBalance:
    """Every account of one currency at a moment; in balanced books debits equal credits."""

    currency: str
    lines: list[BalanceLine]

    @property
    def total_debit(self) -> int:
        return sum(line.debit for line in self.lines)

    @property
    def total_credit(self) -> int:
        return sum(line.credit for line in self.lines)

    @property
    def total(self) -> int:
        """Return the sum of every signed balance: zero in balanced books."""
        return sum(line.net for line in self.lines)

    @property
    def balanced(self) -> bool:
        return self.total == 0


def _chart_position(code: str) -> tuple[int, str]:
    for position, prefix in enumerate(_CHART_ORDER):
        if code == prefix or (prefix.endswith(":") and code.startswith(prefix)):
            return position, code
    return len(_CHART_ORDER), code


def _balances(*, at: datetime, accounts: Q | None = None) -> list[BalanceLine]:
    """Return the signed balance of every account (optionally some) from the postings effective before `at`.

    The days before `at`'s UTC day are read from the day totals; the part of its day before
    `at`, if any, from the postings themselves (through their account-and-time index).
    """
    day = at.astimezone(UTC).date()
    nets: dict[tuple[str, str], int] = defaultdict(int)
    totals = DayTotal.objects.filter(day__lt=day)
    if accounts is not None:
        totals = totals.filter(accounts)
    for code, currency, net in _nets_by_account(totals):
        nets[code, currency] += net
    start = utc_midnight(day)
    if at > start:
        # Every account named, so that the account-and-time index serves the day's range.
        postings = Posting.objects.filter(
            account_id__in=list(LedgerAccount.objects.values_list("pk", flat=True)),
            effective_at__gte=start,
            effective_at__lt=at,
        )
        if accounts is not None:
            postings = postings.filter(accounts)
        for code, currency, net in _nets_by_account(postings):
            nets[code, currency] += net
    lines = [BalanceLine(code=code, currency=currency, net=net) for (code, currency), net in nets.items()]
    return sorted(lines, key=lambda line: (line.currency, _chart_position(line.code)))


def _nets_by_account(rows: QuerySet[DayTotal] | QuerySet[Posting]) -> QuerySet[Any]:
    """Return (account code, currency, summed amount) per account of day totals or postings."""
    return (
        rows.values("account_id", "account__code", "currency")
        .annotate(net=Sum("amount"))
        .order_by()
        .values_list("account__code", "currency", "net")
    )


def trial_balance(*, at: datetime) -> list[TrialBalance]:
    """Return, per currency, every account's balance from the postings effective before `at`.

    Accounts with postings are listed even when their balance is zero; `balanced` says the
    currency's balances sum to zero, as the database's per-entry rule makes them.
    """
    by_currency: dict[str, list[BalanceLine]] = defaultdict(list)
    for line in _balances(at=at):
        by_currency[line.currency].append(line)
    return [TrialBalance(currency=currency, lines=lines) for currency, lines in sorted(by_currency.items())]


@dataclass(frozen=True)
class ClearingBalance:
    """What one provider holds for us in one currency, per our books."""

    provider: str
    currency: str
    amount: int


def clearing_balances(*, at: datetime) -> list[ClearingBalance]:
    """Return each provider's clearing balance per currency from the postings effective before `at`."""
    return sorted(
        (
            ClearingBalance(
                provider=line.code.removeprefix(CLEARING_PREFIX), currency=line.currency, amount=line.net
            )
            for line in _balances(at=at, accounts=Q(account__code__startswith=CLEARING_PREFIX))
        ),
        key=lambda row: (row.provider, row.currency),
    )


class _DaysBetween(Func):
    """The number of days from the second date to the first: PostgreSQL's `date - date`, an integer."""

    arg_joiner = " - "
    template = "(%(expressions)s)"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        # SQLite (`make run`) keeps dates as text, where `-` would subtract the leading years.
        return self.as_sql(
            compiler,
            connection,
            template="CAST(julianday(%(expressions)s) AS INTEGER)",
            arg_joiner=") - julianday(",
            **extra_context,
        )


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


@dataclass(frozen=True)
class ScheduleMonth:
    month: date
    amount: int


@dataclass(frozen=True)
class DeferredSchedule:
    """When one currency's deferred revenue will be earned: month by month, then the rest.

    `deferred` is what the recognition plans still owe; `books` the deferred revenue account's
    balance (all postings), which equals it while the books and the plans agree.
    """

    currency: str
    deferred: int
    books: int
    months: list[ScheduleMonth]
    later: int

    @property
    def total(self) -> int:
        return sum(month.amount for month in self.months) + self.later

    @property
    def agrees(self) -> bool:
        return self.deferred == self.books


def _kept_within_plan(value: Any) -> Least:
    """Return `value` kept between what a plan recognised already and what it will ever recognise.

    Days the job has not reached yet are earned in the first month; a line never earns more
    than the plan still defers.
    """
    return Least(
        Greatest(value, F("recognized"), output_field=BigIntegerField()),
        F("recognized") + F("deferred"),
        output_field=BigIntegerField(),
    )


def _earned_inside_line(boundary: date) -> Sum:
    """Return the sum, over the plans whose line `boundary` cuts, of what each recognised before it.

    The line: `base_recognized + floor(base_amount * days elapsed / days)`, as the daily job
    posts it. Only plans with `start_day < boundary < end_day` are evaluated: for the others
    the line is flat there, and `deferred_revenue_schedule` sums them by their start and end.
    """
    days = _DaysBetween(F("end_day"), F("start_day"))
    elapsed = _DaysBetween(Value(boundary, DateField()), F("start_day"))
    line = F("base_recognized") + F("base_amount") * elapsed / days
    return Sum(_kept_within_plan(line), filter=Q(start_day__lt=boundary, end_day__gt=boundary))


def _earned_outside_lines(open_plans: QuerySet[RecognitionPlan], ends: list[date]) -> dict[str, list[int]]:
    """Return, per currency and boundary, what the plans whose line it does not cut recognised before it.

    A boundary on or before a line's first day finds it at `base_recognized`, one on or after
    its end at `base_recognized + base_amount`: the same for every such boundary, so the plans
    are summed once per (currency, start day, end day) and the sums are placed here.
    """
    earned: dict[str, list[int]] = defaultdict(lambda: [0] * len(ends))
    groups = (
        open_plans.values("currency", "start_day", "end_day")
        .annotate(
            before=Sum(_kept_within_plan(F("base_recognized"))),
            after=Sum(_kept_within_plan(F("base_recognized") + F("base_amount"))),
        )
        .order_by()
    )
    for group in groups:
        for index, end in enumerate(ends):
            if group["end_day"] <= end:
                earned[group["currency"]][index] += group["after"]
            elif group["start_day"] >= end:
                earned[group["currency"]][index] += group["before"]
    return earned


def deferred_revenue_schedule(*, today: date, months: int = 12) -> list[DeferredSchedule]:
    """Return, per currency, how much of the revenue deferred now is earned in each coming month.

    The months are UTC calendar months, the current one first (from `today` on, with any day
    the recognition job has not reached yet); what is earned after the last one is `later`.
    Each plan's straight line is cut at the months' ends; the parts add up to what it defers.
    A plan is evaluated only at the month ends inside its line (one or two for a monthly plan);
    before and after it, plans are summed by their start and end days.
    """
    firsts = [today.replace(day=1)]
    for _ in range(months):
        firsts.append(_next_month(firsts[-1]))
    ends = firsts[1:]
    open_plans = RecognitionPlan.objects.filter(deferred__gt=0)
    inside = {f"by_{index}": _earned_inside_line(end) for index, end in enumerate(ends)}
    rows = {
        row["currency"]: row
        for row in open_plans.values("currency")
        .annotate(recognized_sum=Sum("recognized"), deferred_sum=Sum("deferred"), **inside)
        .order_by()
    }
    outside = _earned_outside_lines(open_plans, ends)
    books = dict(
        DayTotal.objects.filter(account__code=chart.DEFERRED_REVENUE)
        .values("currency")
        .annotate(net=Sum("amount"))
        .order_by()
        .values_list("currency", "net")
    )
    schedules = []
    for currency in sorted({*rows, *(code for code, net in books.items() if net)}):
        row = rows.get(currency)
        amounts = []
        if row is not None:
            earned = [
                row["recognized_sum"],
                *((row[f"by_{index}"] or 0) + outside[currency][index] for index in range(len(ends))),
            ]
            amounts = [later - before for before, later in pairwise(earned)]
        deferred = row["deferred_sum"] if row is not None else 0
        schedules.append(
            DeferredSchedule(
                currency=currency,
                deferred=deferred,
                books=-books.get(currency, 0),
                months=[
                    ScheduleMonth(month=month, amount=amounts[index] if amounts else 0)
                    for index, month in enumerate(firsts[:-1])
                ],
                later=deferred - sum(amounts),
            )
        )
    return schedules


@dataclass(frozen=True)
class RevenueMonth:
    """One currency's month: revenue earned (accrual) next to money received (cash)."""

    month: date
    currency: str
    recognized: int
    refunded_earned: int
    cash_in: int
    cash_refunded: int

    @property
    def revenue(self) -> int:
        """Return the revenue earned less the refunds of money already earned (accrual basis)."""
        return self.recognized - self.refunded_earned

    @property
    def cash(self) -> int:
        """Return the money providers took for us less what they gave back (cash basis)."""
        return self.cash_in - self.cash_refunded


def _sum(condition: Q) -> Coalesce:
    return Coalesce(Sum("amount", filter=condition), Value(0), output_field=BigIntegerField())


def revenue_by_month(*, date_from: date, date_to: date) -> list[RevenueMonth]:
    """Return, per currency and UTC month of the days [date_from, date_to], accrual revenue and cash.

    Accrual: revenue recognised (credits to `revenue`) less refunds of earned money (debits to
    `refunds`). Cash: what providers took (clearing debits of captured payments) less what they
    gave back (clearing credits of refunds); fees and payouts move money the provider already
    held, so they are not cash received. Every month of the range is listed for each currency
    that had any of these, zeros included.
    """
    clearing = Q(account__code__startswith=CLEARING_PREFIX)
    rows = (
        DayTotal.objects.filter(day__gte=date_from, day__lte=date_to)
        .filter(
            Q(account__code__in=(chart.REVENUE, chart.REFUNDS))
            | clearing & Q(kind__in=(EntryKind.PAYMENT_CAPTURED, EntryKind.REFUND))
        )
        .annotate(month=TruncMonth("day", output_field=DateField()))
        .values("currency", "month")
        .annotate(
            revenue=_sum(Q(account__code=chart.REVENUE)),
            refunds=_sum(Q(account__code=chart.REFUNDS)),
            cash_in=_sum(clearing & Q(kind=EntryKind.PAYMENT_CAPTURED)),
            cash_out=_sum(clearing & Q(kind=EntryKind.REFUND)),
        )
        .order_by()
    )
    found = {(row["currency"], row["month"]): row for row in rows}
    months = [date_from.replace(day=1)]
    while _next_month(months[-1]) <= date_to:
        months.append(_next_month(months[-1]))
    result = []
    for currency in sorted({currency for currency, _ in found}):
        for month in months:
            row = found.get((currency, month))
            result.append(
                RevenueMonth(
                    month=month,
                    currency=currency,
                    recognized=-row["revenue"] if row else 0,
                    refunded_earned=row["refunds"] if row else 0,
                    cash_in=row["cash_in"] if row else 0,
                    cash_refunded=-row["cash_out"] if row else 0,
                )
            )
    return result
