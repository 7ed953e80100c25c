"""Backfill: post the money history already in the database, so the books start complete.

For each paid payment (PAID_STATUSES) the books do not show in full yet, in batches and under
the payments' locks, the backfill posts what the live listeners would have posted:

1. its capture (`payment:<id>`, dated when it was paid);
2. its recognition plan over the period it paid for (not for a charge refunded at once for lack
   of a home, which paid for nothing), stretched by the goodwill extensions of that period that
   the audit log records;
3. its refunded amount not yet posted, as one refund entry (`refund:<id>:<refunded amount>`)
   dated when its last refund succeeded: the unearned part out of deferred revenue.

Every source is unique and each step is taken only when the books lack it, so a second run (or
a run after the live listeners posted part of a payment) posts nothing twice.

Revenue is not recognised by `ledger_backfill`: the plans start with nothing earned. Left to
the daily job, its next run would post everything earned so far on one day;
`recognition_catch_up` (the command's default) instead runs that job once per past month, on
the month's last day, then for yesterday, so the revenue of each month before the ledger went
live is posted in that month.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Max, Min, Sum

from billing.models import Subscription
from core.audit import AuditAction
from core.days import FIRST_DAY
from ledger import accounts_chart as chart
from ledger.models import EntryKind, JournalEntry, Posting, RecognitionPlan
from ledger.services import postings, recognition
from payments.models import PAID_STATUSES, Payment, Refund, RefundStatus
from payments.services.unhomed import UNHOMED_COMMENT

logger = logging.getLogger(__name__)

BATCH = 500


@dataclass
class BackfillResult:
    """What one run posted."""

    examined: int = 0
    captures: int = 0
    plans: int = 0
    extensions: int = 0
    refunds: int = 0

    @property
    def posted(self) -> int:
        return self.captures + self.refunds


@dataclass
class _Books:
    """What the books already hold for a batch of payments."""

    captured: set[Any] = field(default_factory=set)
    planned: set[Any] = field(default_factory=set)
    unhomed: set[Any] = field(default_factory=set)
    refunded: dict[Any, int] = field(default_factory=dict)

    def complete(self, payment: Payment) -> bool:
        return (
            payment.pk in self.captured
            and (payment.pk in self.planned or payment.pk in self.unhomed)
            and self.refunded.get(payment.pk, 0) >= payment.refunded_amount
        )


def ledger_backfill(
    *, batch_size: int = BATCH, progress: Callable[[BackfillResult], None] | None = None
) -> BackfillResult:
    """Post every paid payment's capture, plan and refunds the books lack; return what was posted.

    One transaction per batch of `batch_size` payments, which it locks (payment level of the
    lock order, in primary key order) before it reads what the books hold for them.
    """
    result = BackfillResult()
    for batch in _paid_batches(batch_size):
        result.examined += len(batch)
        # Read without locks first: a hint of which payments lack something (most do, once).
        books = _books_for([payment.pk for payment in batch])
        lacking = [payment.pk for payment in batch if not books.complete(payment)]
        if lacking:
            _batch_post(lacking, result)
        if progress is not None:
            progress(result)
    return result


def _paid_batches(batch_size: int) -> Iterator[list[Payment]]:
    paid = Payment.objects.filter(status__in=PAID_STATUSES).only("pk", "refunded_amount").order_by("pk")
    last = None
    while True:
        batch = list((paid if last is None else paid.filter(pk__gt=last))[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def _books_for(ids: list[Any]) -> _Books:
    books = _Books()
    books.captured = set(
        JournalEntry.objects.filter(payment_id__in=ids, kind=EntryKind.PAYMENT_CAPTURED).values_list(
            "payment_id", flat=True
        )
    )
    books.planned = set(
        RecognitionPlan.objects.filter(payment_id__in=ids).values_list("payment_id", flat=True)
    )
    books.unhomed = set(
        Refund.objects.filter(
            payment_id__in=ids, comment=UNHOMED_COMMENT, created_by__isnull=True
        ).values_list("payment_id", flat=True)
    )
    refunded = (
        Posting.objects.filter(
            entry__payment_id__in=ids,
            entry__kind=EntryKind.REFUND,
            account__code__startswith=chart.provider_clearing(""),
        )
        .values("entry__payment_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    books.refunded = {row["entry__payment_id"]: -int(row["total"]) for row in refunded}
    return books


@transaction.atomic
def _batch_post(ids: list[Any], result: BackfillResult) -> None:
    # Only the payments' own rows: a subscription is read for its status, never locked here.
    # FOR NO KEY UPDATE still queues behind a refund or a capture of the same payment, but not the
    # foreign-key check of the recognition job inserting an entry for it under its plan's lock.
    locked = list(
        Payment.objects.select_for_update(of=("self",), no_key=True)
        .filter(pk__in=ids, status__in=PAID_STATUSES)
        .select_related("subscription")
        .order_by("pk")
    )
    books = _books_for([payment.pk for payment in locked])
    extensions = _extensions_of({payment.subscription_id for payment in locked})
    for payment in locked:
        if books.complete(payment):
            continue  # posted live between the hint and the lock
        if payment.pk not in books.captured:
            postings.payment_captured(payment=payment)
            result.captures += 1
        if payment.pk not in books.planned and payment.pk not in books.unhomed:
            postings.payment_succeeded(payment=payment)
            result.plans += 1
            result.extensions += _plan_stretch(payment, extensions.get(payment.subscription_id, []))
        missing = payment.refunded_amount - books.refunded.get(payment.pk, 0)
        if missing > 0:
            _refund_post(payment, missing)
            result.refunds += 1


def _extensions_of(subscription_ids: set[Any]) -> dict[Any, list[tuple[datetime, datetime, int]]]:
    """Return each subscription's goodwill extensions, oldest first: (period end before, after, days)."""
    content_type = ContentType.objects.get_for_model(Subscription)
    by_text = {str(pk): pk for pk in subscription_ids}
    entries = LogEntry.objects.filter(
        content_type=content_type,
        object_pk__in=list(by_text),
        additional_data__action=AuditAction.SUBSCRIPTION_EXTEND.value,
    ).order_by("timestamp", "pk")
    extensions: dict[Any, list[tuple[datetime, datetime, int]]] = {}
    for entry in entries:
        try:
            # Written by core.audit.audit_value: naive UTC text.
            before, after = (
                datetime.fromisoformat(value).replace(tzinfo=UTC)
                for value in entry.changes["current_period_end"]
            )
            days = int(entry.additional_data["days"])
        except (KeyError, TypeError, ValueError, IndexError):
            logger.warning("audit entry %s: a goodwill extension without its period end or days", entry.pk)
            continue
        extensions.setdefault(by_text[entry.object_pk], []).append((before, after, days))
    return extensions


def _plan_stretch(payment: Payment, extensions: list[tuple[datetime, datetime, int]]) -> int:
    """Stretch a new plan by the extensions of its period, one after another; return how many."""
    end = payment.period_end
    stretched = 0
    for before, after, days in extensions:
        if end is not None and before == end:
            recognition.plan_extend(payment=payment, days=days)
            end = after
            stretched += 1
    return stretched


def _refund_post(payment: Payment, amount: int) -> None:
    """Post refunds the books lack as one entry (`postings.refund_post`), dated.

    Dated when the payment's last refund succeeded, so a balance at an earlier date shows the
    money still held. Named by the refunded total as the live entries are; if a live refund
    already took that name (the ledger went live between two refunds), `:backfill` follows it.
    """
    source = f"refund:{payment.pk}:{payment.refunded_amount}"
    if JournalEntry.objects.filter(source=source).exists():
        source = f"{source}:backfill"
    last = Refund.objects.filter(payment=payment, status=RefundStatus.SUCCEEDED).aggregate(
        at=Max("succeeded_at")
    )
    postings.refund_post(
        payment=payment, amount=amount, source=source, effective_at=last["at"], memo="backfill"
    )


def recognition_catch_up(*, through: date) -> list[recognition.RecognitionResult]:
    """Recognise the open plans month by month, on each month's last day, then through `through`.

    The daily job run for the days a backfilled history needs, at month granularity: each
    month's revenue lands in its month, in a few runs instead of one per day. Posts nothing
    twice (the job's own rule), so it may follow the daily job or be run again.
    """
    first = RecognitionPlan.objects.filter(deferred__gt=0, start_day__lte=through).aggregate(
        day=Min("start_day")
    )
    results = []
    day = max(first["day"] or through, FIRST_DAY)
    while True:
        month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if month_end >= through:
            break
        results.append(recognition.revenue_recognize(day=month_end))
        day = month_end + timedelta(days=1)
    results.append(recognition.revenue_recognize(day=through))
    return results
