"""Revenue recognition: each paid period's money moves from deferred revenue to revenue by day.

The rules, as the books apply them:

- A payment is earned evenly over the UTC days of the period it paid for: the day its period
  starts counts in full, the day it ends belongs to the next period (so back-to-back periods
  share no day), and a period shorter than a day is one day. Through day D, `floor(amount *
  days elapsed / days)` is earned; the last day takes what rounding left.
- A refund first comes out of what is still deferred (service not yet given); only the rest
  was earned already and goes to refunds. If the refund ended access, whatever is then still
  deferred is earned over the days not yet recognised, through the day of the refund (the
  service was given until then): the run for that day takes it all. If access went on, what
  is left follows the line to the period's end.
- A goodwill extension spreads what is still deferred, from the first day not yet recognised,
  over the period made longer.
- The daily job (`revenue_recognize`) posts for each payment and day, as one entry, what the
  line says is earned through that day less what was posted before; never a negative amount,
  so a day run again or after a later day posts nothing.

A plan's row is written under its payment's lock (captures and refunds), its subscription's
(extensions) or, by the job, after a key-share lock on its payment: the plan sits at the
payment's level of the lock order, just after the payment.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Field, Model

from billing.models import Subscription, SubscriptionStatus
from core import clock
from core.days import day_check, utc_midnight
from ledger import accounts_chart as chart
from ledger.models import EntryKind, RecognitionPlan

# The module, not its functions: postings imports this module too (a capture starts a plan).
from ledger.services import postings
from payments.models import Payment

logger = logging.getLogger(__name__)

# Plans locked and posted per transaction: a million open plans never make one huge transaction.
# A batch costs the same few statements however many plans it holds: 1,000 posted about a tenth
# faster than 500 and as fast as 2,000 (2,700 to 4,400 plans/s on two shared cores).
BATCH_SIZE = 1000
# A subscription in one of these still gives access: a refund that leaves it so ended nothing.
_RUNNING = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


class RecognitionDayNotOver(ValueError):
    """Revenue is recognised only for a UTC day that is over on the billing clock."""


@dataclass
class RecognitionResult:
    """What one run of the daily job posted for its day."""

    day: date
    plans: int = 0  # plans with money deferred whose line had started by the day
    entries: int = 0  # entries posted (one per payment that earned something new)
    recognized: dict[str, int] = field(default_factory=dict)  # minor units per currency


# --- the line ---------------------------------------------------------------------------


def plan_recognized_through(plan: RecognitionPlan, day: date) -> int:
    """Return what the plan's line says is recognised by the end of `day` (minor units)."""
    days = (plan.end_day - plan.start_day).days
    elapsed = min(max((day - plan.start_day).days + 1, 0), days)
    return plan.base_recognized + plan.base_amount * elapsed // days


def _period_days(payment: Payment) -> tuple[date, date]:
    """Return the UTC days [first, end) a payment pays for (at least one day)."""
    start = (payment.period_start or payment.paid_at or clock.now()).date()
    end = payment.period_end.date() if payment.period_end is not None else start
    return start, max(end, start + timedelta(days=1))


def _first_open_day(plan: RecognitionPlan) -> date:
    """Return the first day of the plan the daily job has not settled yet."""
    if plan.recognized_through is None:
        return plan.start_day
    return max(plan.start_day, plan.recognized_through + timedelta(days=1))


def _redraw(plan: RecognitionPlan, *, start_day: date, end_day: date) -> None:
    """Draw a new line over [start_day, end_day) with what is still deferred."""
    plan.start_day = start_day
    plan.end_day = max(end_day, start_day + timedelta(days=1))
    plan.base_recognized = plan.recognized
    plan.base_amount = plan.deferred


# --- what payments and billing change ---------------------------------------------------


def plan_start(*, payment: Payment) -> None:
    """Open the straight line of a captured payment over its period (once per payment).

    One `INSERT … ON CONFLICT DO NOTHING`: a plan already open (a replayed fact, a backfill)
    stays as it is, and a renewal pays one statement for it, not a look-up and a savepoint.
    """
    start, end = _period_days(payment)
    RecognitionPlan.objects.bulk_create(
        [
            RecognitionPlan(
                payment=payment,
                currency=payment.currency,
                start_day=start,
                end_day=end,
                base_amount=payment.amount,
                deferred=payment.amount,
            )
        ],
        ignore_conflicts=True,
    )


def _plan_lock(payment: Payment) -> RecognitionPlan:
    """Lock a payment's plan; for a payment the books never saw captured, book it first.

    Such a payment was paid before the ledger (and not backfilled yet): its capture is posted
    now, so that a refund or an extension has deferred revenue to come out of, and a later
    backfill finds the capture in the books and posts nothing twice.
    """
    plan = RecognitionPlan.objects.select_for_update().filter(payment=payment).first()
    if plan is not None:
        return plan
    postings.payment_captured(payment=payment)
    plan_start(payment=payment)
    return RecognitionPlan.objects.select_for_update().get(payment=payment)


def plan_refund(*, payment: Payment, amount: int) -> tuple[int, int]:
    """Take a refund out of a payment's plan; return (unearned part, earned part).

    The unearned part comes out of what is still deferred; the rest was earned already and
    goes to refunds. If access ended, what may still be deferred is earned through today (the
    service was given until now), so the next run recognises it; otherwise the line goes on
    to the period's end. The caller holds the payment's lock, after its subscription's, so the
    subscription's status read here is the one the refund left.
    """
    plan = _plan_lock(payment)
    unearned = min(amount, plan.deferred)
    plan.deferred -= unearned
    status = Subscription.objects.filter(pk=payment.subscription_id).values_list("status", flat=True).first()
    first = _first_open_day(plan)
    if status in _RUNNING:
        _redraw(plan, start_day=first, end_day=plan.end_day)
    else:
        today = clock.now().date()
        # A period that had not begun yet ends today all the same: no service is owed any more.
        _redraw(plan, start_day=min(first, today), end_day=today + timedelta(days=1))
    plan.save()
    return unearned, amount - unearned


def plan_extend(*, payment: Payment, days: int) -> None:
    """Spread what is left of a payment's deferred revenue over its period made `days` longer."""
    plan = _plan_lock(payment)
    if plan.deferred == 0:
        return
    _redraw(plan, start_day=_first_open_day(plan), end_day=plan.end_day + timedelta(days=days))
    plan.save()


# --- the daily job ----------------------------------------------------------------------


def revenue_recognize(*, day: date, batch_size: int = BATCH_SIZE) -> RecognitionResult:
    """Post, per payment, the revenue its line says is earned through `day` and not yet posted.

    Each entry (source `recognition:<payment id>:<day>`) moves the amount from deferred revenue
    to revenue, effective at the start of `day` (UTC): it lies inside the day it was earned in,
    so every report that cuts time into UTC days (a day, a month, a balance at the end of a
    day) counts it on that day. Plans are locked and posted `batch_size` at a time, in the
    order of their payment ids, so two runs at once queue on the same rows instead of
    deadlocking, and the second finds nothing left to post. Raises `RecognitionDayNotOver`
    for a day that is not over yet on the billing clock.
    """
    day_check(day)
    if day >= clock.now().date():
        raise RecognitionDayNotOver(f"{day.isoformat()} is not over yet")
    result = RecognitionResult(day=day)
    after: UUID | None = None
    while True:
        # Which plans to look at is a hint read without a lock; each batch re-checks under it.
        open_plans = RecognitionPlan.objects.filter(deferred__gt=0, start_day__lte=day)
        if after is not None:
            open_plans = open_plans.filter(payment_id__gt=after)
        batch = list(open_plans.order_by("payment_id").values_list("payment_id", flat=True)[:batch_size])
        if not batch:
            return result
        _recognize_batch(payment_ids=batch, day=day, result=result)
        after = batch[-1]


@dataclass(frozen=True)
class _Recognition:
    """What the job does to one locked plan for its day: post `amount` (if any) and move `through`."""

    plan: RecognitionPlan
    amount: int
    through: date
    source: str


@transaction.atomic
def _recognize_batch(*, payment_ids: list[UUID], day: date, result: RecognitionResult) -> None:
    """Post a batch of plans' revenue for `day` in a few statements, however many plans it holds.

    The payments' key-share locks first, then the plans' (the lock order); under them, one query
    finds the days already in the books, one insert writes the entries, one their postings and
    one update moves the plans.
    """
    _payments_key_share(payment_ids)
    plans = (
        RecognitionPlan.objects.select_for_update()
        .filter(payment_id__in=payment_ids, deferred__gt=0, start_day__lte=day)
        .order_by("payment_id")
    )
    recognitions = [_recognition(plan=plan, day=day) for plan in plans]
    posted = postings.sources_posted(sources=(r.source for r in recognitions if r.amount > 0))
    earned, moved = [], []
    for recognition in recognitions:
        plan = recognition.plan
        if recognition.amount <= 0:
            # Nothing new (a day run again, or before a later one): only where the job stands moves.
            if recognition.through != plan.recognized_through:
                moved.append(recognition)
        elif recognition.source in posted:
            # The day was posted for this payment already, yet the plan says less was recognised:
            # the books and the plan disagree. Leave both as they are for ledger_check to report.
            logger.error(
                "recognition of payment %s for %s is in the books but not in its plan", plan.payment_id, day
            )
        else:
            earned.append(recognition)
    postings.entries_post(drafts=[_entry_draft(recognition, day=day) for recognition in earned])
    _plans_move([(r.plan, r.amount, r.through) for r in earned] + [(r.plan, 0, r.through) for r in moved])
    result.plans += len(recognitions)
    result.entries += len(earned)
    for recognition in earned:
        currency = recognition.plan.currency
        result.recognized[currency] = result.recognized.get(currency, 0) + recognition.amount


def _recognition(*, plan: RecognitionPlan, day: date) -> _Recognition:
    """Return what a locked plan earned through `day` and not yet posted, and where the job then stands."""
    return _Recognition(
        plan=plan,
        amount=plan_recognized_through(plan, day) - plan.recognized,
        through=day if plan.recognized_through is None else max(plan.recognized_through, day),
        source=recognition_source(payment_id=plan.payment_id, day=day),
    )


def _entry_draft(recognition: _Recognition, *, day: date) -> "postings.EntryDraft":
    """Return the entry moving a plan's newly earned amount from deferred revenue to revenue."""
    amount = recognition.amount
    return postings.EntryDraft(
        source=recognition.source,
        kind=EntryKind.REVENUE_RECOGNIZED,
        currency=recognition.plan.currency,
        effective_at=utc_midnight(day),
        lines=[(chart.DEFERRED_REVENUE, amount), (chart.REVENUE, -amount)],
        payment_id=recognition.plan.payment_id,
    )


def _plans_move(moves: list[tuple[RecognitionPlan, int, date]]) -> None:
    """Write each locked plan's move (plan, amount posted for it, day the job now stands at) at once.

    `updated_at` is stamped as UpdatedAtField stamps a save, once for the batch (the job writes
    them in one statement, and reads the billing clock once).
    """
    if not moves:
        return
    now = clock.now()
    _update_by_key(
        RecognitionPlan,
        ("payment", "recognized", "deferred", "recognized_through", "updated_at"),
        [
            (plan.payment_id, plan.recognized + amount, plan.deferred - amount, through, now)
            for plan, amount, through in moves
        ],
    )


def _update_by_key(model: type[Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set the fields `names` of a model's rows to `rows`' values, each row found by its first (the key).

    One `UPDATE … FROM (VALUES …)` joined on the key: Django's `bulk_update` (a CASE per field
    and a WHEN per row) cost more to build in Python than all the rest of the job, and makes the
    database try each row's WHENs in turn. SQLite takes so many parameters per statement, so it
    gets a few statements; PostgreSQL takes a batch in one.
    """
    concrete = {f.name: f for f in model._meta.concrete_fields}
    fields = [concrete[name] for name in names]
    quote = connection.ops.quote_name
    table, key = quote(model._meta.db_table), quote(fields[0].column)
    assignments = ", ".join(f"{quote(f.column)} = v.column{n}" for n, f in enumerate(fields[1:], start=2))
    row_sql = "(" + ", ".join(_values_placeholder(f) for f in fields) + ")"
    per_statement = max(connection.ops.bulk_batch_size(fields, rows), 1)
    with connection.cursor() as cursor:
        for first in range(0, len(rows), per_statement):
            chunk = rows[first : first + per_statement]
            cursor.execute(
                f"UPDATE {table} SET {assignments} "  # noqa: S608 - names are the model's, values parameters
                f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v WHERE {table}.{key} = v.column1",
                [
                    f.get_db_prep_value(v, connection)
                    for row in chunk
                    for f, v in zip(fields, row, strict=True)
                ],
            )


def _values_placeholder(field: "Field[Any, Any]") -> str:
    """Return the placeholder of a value of `field` in a VALUES list.

    PostgreSQL types a VALUES column from what it holds, so it is told the field's type;
    SQLite has no such types (and a cast to a type it does not know would change the value).
    """
    if connection.vendor == "postgresql":
        return f"CAST(%s AS {field.db_type(connection)})"
    return "%s"


def _payments_key_share(payment_ids: list[UUID]) -> None:
    """Take the weakest lock on the payments (PostgreSQL's FOR KEY SHARE), in id order.

    An entry names its payment, so committing it takes this lock anyway (the foreign key's
    check). Taken at commit, after the plans' locks, it would wait for a refund that holds the
    payment and waits for its plan: a deadlock. Taken first, the job follows the lock order
    (payment, then its plan) and waits only for writers that lock the payment FOR UPDATE;
    it never blocks other runs, nor a payment's updates that leave its id alone.
    """
    if connection.vendor != "postgresql":
        return  # SQLite (`make run`) has no row locks: one writer at a time
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Payment._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE",  # noqa: S608 - the table name is the model's
            [payment_ids],
        )


def recognition_source(*, payment_id: UUID, day: date) -> str:
    """Return the source that names the revenue recognised for a payment on a day."""
    return f"recognition:{payment_id}:{day.isoformat()}"
