"""Pruning of what was told long ago: delivered events to the cinema's services, and sent notices.

Only what nobody waits for goes:
- deliveries delivered, created more than RETENTION_OUTBOX_DAYS ago. A pending one is tried
  until it is delivered, however old;
- events older than RETENTION_OUTBOX_DAYS with no delivery left, except the last event of
  each subscription: the next event's sequence number follows it (`event_publish`), and
  receivers rely on numbers never repeating;
- notices sent (or skipped as no longer true) and created more than RETENTION_NOTICES_DAYS
  ago. A notice waiting to be sent, or failed for support to send again, stays. A pruned notice
  cannot be recorded a second time: the period it was about ended long before.
"""

from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef

from core.retention import retention_cutoff, rows_delete_in_batches
from notifications.models import DeliveryStatus, EventDelivery, Notice, NoticeStatus, OutboxEvent

FINISHED_NOTICE_STATUSES = (NoticeStatus.SENT, NoticeStatus.SKIPPED)


def event_deliveries_prune(*, before: datetime, batch_size: int) -> int:
    """Delete the deliveries delivered and created before `before`; return how many."""
    delivered = EventDelivery.objects.filter(status=DeliveryStatus.DELIVERED, created_at__lt=before)
    return rows_delete_in_batches(rows=delivered, order_by="created_at", batch_size=batch_size)


def outbox_events_prune(*, before: datetime, batch_size: int) -> int:
    """Delete the events that occurred before `before` with no delivery left and a later event; return how many."""
    later_event = OutboxEvent.objects.filter(
        subscription_id=OuterRef("subscription_id"), sequence__gt=OuterRef("sequence")
    )
    done = (
        OutboxEvent.objects.filter(occurred_at__lt=before)
        .exclude(Exists(EventDelivery.objects.filter(event_id=OuterRef("pk"))))
        .filter(Exists(later_event))
    )
    return rows_delete_in_batches(rows=done, order_by="occurred_at", batch_size=batch_size)


def notices_prune(*, before: datetime, batch_size: int) -> int:
    """Delete the notices sent or skipped and created before `before`; return how many."""
    finished = Notice.objects.filter(status__in=FINISHED_NOTICE_STATUSES, created_at__lt=before)
    return rows_delete_in_batches(rows=finished, order_by="created_at", batch_size=batch_size)


def notifications_retention_run(*, now: datetime) -> dict[str, int]:
    """Prune old deliveries, events and notices by the RETENTION_* settings; return how many of each went."""
    batch_size = settings.RETENTION_BATCH_SIZE
    pruned = {}
    if before := retention_cutoff(now=now, days=settings.RETENTION_OUTBOX_DAYS):
        # Deliveries first: an event goes only once its deliveries have.
        pruned["event_deliveries"] = event_deliveries_prune(before=before, batch_size=batch_size)
        pruned["outbox_events"] = outbox_events_prune(before=before, batch_size=batch_size)
    if before := retention_cutoff(now=now, days=settings.RETENTION_NOTICES_DAYS):
        pruned["notices"] = notices_prune(before=before, batch_size=batch_size)
    return pruned
