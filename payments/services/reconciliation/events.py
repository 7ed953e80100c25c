"""The missed-events job: store the provider's events we never received and handle them.

`reconcile_events` reads a provider's event list on from where its last run stopped, stores the
events we never received and feeds them (and stored ones never handled) to the webhook
handlers. Each provider has its own cursor. Safe to run twice, or next to the webhooks: the
handlers are idempotent.
"""

import contextlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from core import clock
from payments.gateways import get_gateway
from payments.gateways.base import EventQuery, GatewayEvent
from payments.models import (
    ReconciliationCursor,
    ReconciliationKind,
    ReconciliationRun,
    WebhookEvent,
    WebhookEventSource,
    WebhookEventStatus,
)
from payments.services.reconciliation.runs import (
    _cursor_of,
    _execute,
    _lease_keep,
    _note_error,
    _note_fix,
    reconciliation_provider,
)
from payments.services.webhooks import (
    EventProcessingFailed,
    event_is_acted_on,
    webhook_event_process,
    webhook_event_record,
)

# Events are re-read from a little before the newest one seen: a provider's list can show an
# event a moment after a later one, and `created` has whole seconds. Stored ones are skipped by id.
EVENTS_OVERLAP = timedelta(minutes=10)
EVENTS_PAGE_SIZE = 100
# Stored events still unhandled are retried by the events run, at most this many a run, and
# failed ones until they have been tried this many times in all.
STUCK_EVENTS_PER_RUN = 500
STUCK_EVENT_MAX_ATTEMPTS = 20


def reconcile_events(*, provider: str | None = None) -> ReconciliationRun:
    """Store a provider's events we never received since its last run, and handle them oldest first.

    The provider defaults to the default one. Its first run ever reads back
    `RECONCILIATION_EVENTS_LOOKBACK`. Events of types no handler cares about are read but not
    stored. Its events stored longer ago than `RECONCILIATION_PENDING_AFTER` but never handled
    (their task was lost) are handled too.
    """
    return _execute(ReconciliationKind.EVENTS, reconciliation_provider(provider), _feed_events)


def _feed_events(run: ReconciliationRun) -> None:
    cursor: ReconciliationCursor = _cursor_of(run).get()
    now = clock.now()
    if cursor.last_event_created_at is None:
        created_after = now - settings.RECONCILIATION_EVENTS_LOOKBACK
    else:
        created_after = cursor.last_event_created_at - EVENTS_OVERLAP
    stuck_before = now - settings.RECONCILIATION_PENDING_AFTER
    newest, missed = _store_missed_events(run, created_after, stuck_before=stuck_before)
    missed += _stuck_events(run.provider, stuck_before, already=[pk for pk, _ in missed])
    # The cursor moves only once every page was read: a run that failed half-way is read again.
    last_seen = cursor.last_event_created_at
    if newest is not None and (last_seen is None or newest.created >= last_seen):
        _cursor_of(run).filter(locked_by=run).update(
            last_event_id=newest.id, last_event_created_at=newest.created
        )
    # Pages run newest first, so the reverse of the reading order is the order they were made in.
    for event_pk, new in reversed(missed):
        _lease_keep(run)
        # A failed event is kept as failed: its queued task retries it, support can replay it.
        with contextlib.suppress(EventProcessingFailed):
            webhook_event_process(event_pk=event_pk)
        # A worker may have handled it first (the event was also queued when it was stored).
        handled = WebhookEvent.objects.get(pk=event_pk)
        if handled.status == WebhookEventStatus.FAILED:
            _note_error(run, f"{handled.event_id} ({handled.type}): {handled.last_error}")
        _note_fix(
            run, {"event": handled.event_id, "type": handled.type, "status": handled.status, "new": new}
        )


def _stuck_events(provider: str, stuck_before: datetime, *, already: list[int]) -> list[tuple[int, bool]]:
    """Return a provider's stored events never handled (their task was lost) or failed and worth retrying.

    Read from our own table, not from the provider's list, so an event stuck for longer than
    the list's window is still retried. Returned newest first, like the list's order.
    """
    stuck = (
        WebhookEvent.objects.filter(
            Q(status=WebhookEventStatus.RECEIVED)
            | Q(status=WebhookEventStatus.FAILED, attempts__lt=STUCK_EVENT_MAX_ATTEMPTS),
            provider=provider,
            received_at__lt=stuck_before,
        )
        .exclude(pk__in=already)
        .order_by("provider_created_at", "pk")
        .values_list("pk", flat=True)[:STUCK_EVENTS_PER_RUN]
    )
    return [(pk, False) for pk in reversed(list(stuck))]


def _store_missed_events(
    run: ReconciliationRun, created_after: datetime, *, stuck_before: datetime
) -> tuple[GatewayEvent | None, list[tuple[int, bool]]]:
    """Read every page of events after `created_after`; store those we never had.

    Return the newest event read, and the events to handle in reading order (newest first):
    the newly stored ones, and those stored before `stuck_before` but never handled (their
    task was lost), each as (primary key, whether it is new).
    """
    gateway = get_gateway(run.provider)
    newest: GatewayEvent | None = None
    missed: list[tuple[int, bool]] = []
    starting_after: str | None = None
    while True:
        page = gateway.list_events(
            EventQuery(created_after=created_after, starting_after=starting_after, limit=EVENTS_PAGE_SIZE)
        )
        for event in page.events:
            run.examined += 1
            newest = newest or event
            if not event_is_acted_on(provider=run.provider, event=event):
                continue
            stored, created = webhook_event_record(
                provider=run.provider, event=event, source=WebhookEventSource.RECONCILIATION
            )
            stuck = stored.status == WebhookEventStatus.RECEIVED and stored.received_at < stuck_before
            if created or stuck:
                missed.append((stored.pk, created))
        _lease_keep(run)
        if not page.has_more or not page.events:
            return newest, missed
        starting_after = page.events[-1].id
