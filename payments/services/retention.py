"""Pruning of the payments app's records of finished work: old provider events and reconciliation runs.

Money rows (payments, refunds, refund requests, checkouts) are never pruned, only these:
- provider events handled (processed, or ignored as a type we do not act on) more than
  RETENTION_WEBHOOK_EVENTS_DAYS ago. An event still waiting (received) or failed stays for
  its handler or support, however old. Keep the period well beyond the provider's resending
  (Stripe: 3 days) and RECONCILIATION_EVENTS_LOOKBACK: a pruned event that came again would
  be stored and handled again (harmlessly, handlers being idempotent, but needlessly);
- reconciliation runs that ended more than RETENTION_RECONCILIATION_RUNS_DAYS ago, except a
  run a job's cursor still holds and the last run of each kind and provider, which admin
  shows as when that job last ran.
"""

from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef

from core.retention import retention_cutoff, rows_delete_in_batches
from payments.models import (
    ReconciliationCursor,
    ReconciliationRun,
    ReconciliationRunStatus,
    WebhookEvent,
    WebhookEventStatus,
)

HANDLED_EVENT_STATUSES = (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED)


def webhook_events_prune(*, before: datetime, batch_size: int) -> int:
    """Delete the provider events handled and received before `before`; return how many."""
    handled = WebhookEvent.objects.filter(status__in=HANDLED_EVENT_STATUSES, received_at__lt=before)
    return rows_delete_in_batches(rows=handled, order_by="received_at", batch_size=batch_size)


def reconciliation_runs_prune(*, before: datetime, batch_size: int) -> int:
    """Delete the reconciliation runs started before `before` that nothing needs; return how many."""
    later_run = ReconciliationRun.objects.filter(
        kind=OuterRef("kind"), provider=OuterRef("provider"), started_at__gt=OuterRef("started_at")
    )
    ended = (
        ReconciliationRun.objects.filter(started_at__lt=before)
        .exclude(status=ReconciliationRunStatus.RUNNING)
        .filter(Exists(later_run))
        .exclude(Exists(ReconciliationCursor.objects.filter(locked_by=OuterRef("pk"))))
    )
    return rows_delete_in_batches(rows=ended, order_by="started_at", batch_size=batch_size)


def payments_retention_run(*, now: datetime) -> dict[str, int]:
    """Prune the payments app's old records by the RETENTION_* settings; return how many of each went."""
    batch_size = settings.RETENTION_BATCH_SIZE
    pruned = {}
    if before := retention_cutoff(now=now, days=settings.RETENTION_WEBHOOK_EVENTS_DAYS):
        pruned["webhook_events"] = webhook_events_prune(before=before, batch_size=batch_size)
    if before := retention_cutoff(now=now, days=settings.RETENTION_RECONCILIATION_RUNS_DAYS):
        pruned["reconciliation_runs"] = reconciliation_runs_prune(before=before, batch_size=batch_size)
    return pruned
