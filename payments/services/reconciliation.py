"""Reconciliation: put right what lost webhooks left undone, by asking Stripe.

Two jobs, each recorded as a `ReconciliationRun` with what it examined and what it fixed:
- `reconcile_pending_payments` re-reads from Stripe the checkouts and renewal charges still
  pending after a while, and applies what Stripe says through the same services the webhooks
  and the success page use (`checkout_sync`, `renewal_apply_intent`);
- `reconcile_events` reads Stripe's event list on from where the last run stopped, stores the
  events we never received and feeds them (and stored ones never handled) to the webhook
  handlers.

Both are safe to run twice, or next to the webhooks: every change they make goes through those
idempotent services, each in its own short transaction, so no lock is held over a call to
Stripe (which is also why a run is not one transaction). Two runs of one kind never overlap: a
run first takes its kind's lease (`ReconciliationCursor`), and a run that finds it held is
recorded as skipped.
"""

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from billing.renewals import renewal_apply_intent
from payments.gateways import get_gateway
from payments.gateways.base import EventQuery, GatewayEvent
from payments.models import (
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReconciliationCursor,
    ReconciliationKind,
    ReconciliationRun,
    ReconciliationRunStatus,
    WebhookEvent,
    WebhookEventSource,
    WebhookEventStatus,
)
from payments.services.checkout import checkout_abandon, checkout_sync
from payments.services.webhooks import (
    HANDLERS,
    EventProcessingFailed,
    webhook_event_process,
    webhook_event_record,
)

logger = logging.getLogger(__name__)

# How long a run holds its kind's lease without showing signs of life; it is renewed after
# every item, so only a run that died (or hangs) loses it.
LEASE = timedelta(minutes=10)
# Events are re-read from a little before the newest one seen: Stripe's list can show an event
# a moment after a later one, and `created` has whole seconds. Stored ones are skipped by id.
EVENTS_OVERLAP = timedelta(minutes=10)
EVENTS_PAGE_SIZE = 100
# Entries kept in a run's `fixes`; `fixed` counts them all.
FIXES_KEPT = 1000


class LeaseLost(Exception):
    """Another run took this run's lease over, because this one stopped renewing it in time."""


def reconcile_pending_payments(*, older_than: timedelta) -> ReconciliationRun:
    """Settle, from Stripe's word, what has been pending longer than `older_than`; record the run.

    Examined: open checkouts (or checkouts of pending payments) opened before then, open
    checkouts whose page has expired whatever their age, and pending renewal payments whose
    PaymentIntent is known. A paid checkout activates its subscription, an expired one is
    canceled, a succeeded renewal charge renews the subscription.
    """
    return _execute(ReconciliationKind.PENDING_PAYMENTS, lambda run: _settle_pending(run, older_than))


def reconcile_events() -> ReconciliationRun:
    """Store the Stripe events we never received since the last run, and handle them oldest first.

    The first run ever reads back `RECONCILIATION_EVENTS_LOOKBACK`. Events of types no
    handler cares about are read but not stored. Events stored longer ago than
    `RECONCILIATION_PENDING_AFTER` but never handled (their task was lost) are handled too.
    """
    return _execute(ReconciliationKind.EVENTS, _feed_events)


# --- runs and their lease -----------------------------------------------------------------


def _execute(kind: str, work: Callable[[ReconciliationRun], None]) -> ReconciliationRun:
    run = ReconciliationRun.objects.create(kind=kind)
    if not _lease_take(run):
        run.status = ReconciliationRunStatus.SKIPPED
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
        return run
    try:
        work(run)
    except Exception as exc:
        logger.exception("reconciliation run %s (%s) failed", run.pk, kind)
        _note_error(run, f"{type(exc).__name__}: {exc}")
    finally:
        _lease_release(run)
    run.status = ReconciliationRunStatus.FAILED if run.error else ReconciliationRunStatus.OK
    run.finished_at = timezone.now()
    run.save()
    return run


def _lease_take(run: ReconciliationRun) -> bool:
    """Take the lease of the run's kind unless a live run holds it: one conditional UPDATE."""
    cursor, _ = ReconciliationCursor.objects.get_or_create(kind=run.kind)
    now = timezone.now()
    free = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    taken = ReconciliationCursor.objects.filter(free, kind=run.kind).update(
        locked_by=run, locked_until=now + LEASE
    )
    if taken and cursor.locked_by_id is not None:
        # Its holder stopped renewing the lease: it died (or hangs), so admin shows it failed.
        ReconciliationRun.objects.filter(
            pk=cursor.locked_by_id, status=ReconciliationRunStatus.RUNNING
        ).update(
            status=ReconciliationRunStatus.FAILED,
            finished_at=now,
            error="Stopped without finishing: its lease ran out.",
        )
    return taken == 1


def _lease_keep(run: ReconciliationRun) -> None:
    """Renew the run's lease and show its progress; raise LeaseLost if it is no longer held."""
    kept = ReconciliationCursor.objects.filter(kind=run.kind, locked_by=run).update(
        locked_until=timezone.now() + LEASE
    )
    if not kept:
        raise LeaseLost(f"another run took the {run.kind} lease over")
    ReconciliationRun.objects.filter(pk=run.pk).update(examined=run.examined, fixed=run.fixed)


def _lease_release(run: ReconciliationRun) -> None:
    ReconciliationCursor.objects.filter(kind=run.kind, locked_by=run).update(
        locked_by=None, locked_until=None
    )


def _note_fix(run: ReconciliationRun, fix: dict[str, Any]) -> None:
    run.fixed += 1
    if len(run.fixes) < FIXES_KEPT:
        run.fixes.append(fix)


def _note_error(run: ReconciliationRun, message: str) -> None:
    run.error = f"{run.error}\n{message}" if run.error else message


# --- pending payments ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """One thing to ask Stripe about: a checkout, or a renewal payment's PaymentIntent."""

    what: Literal["checkout", "payment"]
    pk: UUID

    def __str__(self) -> str:
        return f"{self.what} {self.pk}"


def _pending_targets(*, now: datetime, cutoff: datetime) -> list[_Target]:
    stale_open = Q(status=CheckoutStatus.OPEN) & (
        Q(created_at__lte=cutoff, stripe_session_id__isnull=False) | Q(expires_at__lte=now)
    )
    # A pending payment whose checkout is no longer open on our side still gets its checkout re-read.
    of_pending_payment = Q(
        payment__status=PaymentStatus.PENDING,
        payment__created_at__lte=cutoff,
        stripe_session_id__isnull=False,
    )
    checkout_ids = (
        CheckoutSession.objects.filter(stale_open | of_pending_payment)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    intents = (
        Payment.objects.filter(
            status=PaymentStatus.PENDING,
            kind=PaymentKind.RENEWAL,
            stripe_payment_intent_id__isnull=False,
            created_at__lte=cutoff,
        )
        # Renewals paid on a checkout page are settled through that checkout.
        .exclude(checkout_sessions__stripe_session_id__isnull=False)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    return [_Target("checkout", pk) for pk in checkout_ids] + [_Target("payment", pk) for pk in intents]


def _settle_pending(run: ReconciliationRun, older_than: timedelta) -> None:
    now = timezone.now()
    for target in _pending_targets(now=now, cutoff=now - older_than):
        _lease_keep(run)
        run.examined += 1
        before = _snapshot(target)
        try:
            _settle(target, now=now)
        except Exception as exc:
            # One payment Stripe cannot tell us about now must not hold up the others.
            logger.warning("reconciliation could not settle %s", target, exc_info=True)
            _note_error(run, f"{target}: {type(exc).__name__}: {exc}")
            continue
        after = _snapshot(target)
        changes = {key: [before[key], after[key]] for key in after if before.get(key) != after[key]}
        if changes:
            _note_fix(
                run,
                {
                    "subscription": after["subscription_id"],
                    "checkout": str(target.pk) if target.what == "checkout" else None,
                    "payment": after["payment_id"],
                    "changes": {key: value for key, value in changes.items() if not key.endswith("_id")},
                },
            )


def _settle(target: _Target, *, now: datetime) -> None:
    if target.what == "checkout":
        checkout = CheckoutSession.objects.get(pk=target.pk)
        if checkout.stripe_session_id:
            checkout_sync(stripe_session_id=checkout.stripe_session_id)
        elif checkout.expires_at <= now:
            # Its page was never opened (Stripe was down), and now it could not be paid anyway.
            checkout_abandon(checkout=checkout)
        return
    payment = Payment.objects.get(pk=target.pk)
    if payment.status == PaymentStatus.PENDING and payment.stripe_payment_intent_id:
        renewal_apply_intent(
            payment=payment, intent=get_gateway().retrieve_payment_intent(payment.stripe_payment_intent_id)
        )


def _snapshot(target: _Target) -> dict[str, str | None]:
    """Return what a viewer or an accountant would see of a target: statuses and paid-until."""
    checkout = None
    if target.what == "checkout":
        checkout = CheckoutSession.objects.select_related("payment", "subscription").get(pk=target.pk)
        payment, subscription = checkout.payment, checkout.subscription
    else:
        payment = Payment.objects.select_related("subscription").get(pk=target.pk)
        subscription = payment.subscription
    paid_until = subscription.current_period_end
    return {
        "subscription_id": str(subscription.pk),
        "payment_id": str(payment.pk) if payment is not None else None,
        "checkout": checkout.status if checkout is not None else None,
        "payment": payment.status if payment is not None else None,
        "subscription": subscription.status,
        "paid_until": paid_until.isoformat() if paid_until is not None else None,
    }


# --- missed events ------------------------------------------------------------------------


def _feed_events(run: ReconciliationRun) -> None:
    cursor = ReconciliationCursor.objects.get(kind=run.kind)
    if cursor.last_event_created_at is None:
        created_after = timezone.now() - settings.RECONCILIATION_EVENTS_LOOKBACK
    else:
        created_after = cursor.last_event_created_at - EVENTS_OVERLAP
    stuck_before = timezone.now() - settings.RECONCILIATION_PENDING_AFTER
    newest, missed = _store_missed_events(run, created_after, stuck_before=stuck_before)
    # The cursor moves only once every page was read: a run that failed half-way is read again.
    last_seen = cursor.last_event_created_at
    if newest is not None and (last_seen is None or newest.created >= last_seen):
        ReconciliationCursor.objects.filter(kind=run.kind, locked_by=run).update(
            last_event_id=newest.id, last_event_created_at=newest.created
        )
    # Pages run newest first, so the reverse of the reading order is the order Stripe made them in.
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


def _store_missed_events(
    run: ReconciliationRun, created_after: datetime, *, stuck_before: datetime
) -> tuple[GatewayEvent | None, list[tuple[int, bool]]]:
    """Read every page of events after `created_after`; store those we never had.

    Return the newest event read, and the events to handle in reading order (newest first):
    the newly stored ones, and those stored before `stuck_before` but never handled (their
    task was lost), each as (primary key, whether it is new).
    """
    gateway = get_gateway()
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
            if event.type not in HANDLERS:
                continue
            stored, created = webhook_event_record(event=event, source=WebhookEventSource.RECONCILIATION)
            stuck = stored.status == WebhookEventStatus.RECEIVED and stored.received_at < stuck_before
            if created or stuck:
                missed.append((stored.pk, created))
        _lease_keep(run)
        if not page.has_more or not page.events:
            return newest, missed
        starting_after = page.events[-1].id
