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

from core import clock
from payments.gateways import get_gateway
from payments.gateways.base import ChargeInfo, CreatedRange, EventQuery, GatewayEvent
from payments.gateways.base import RefundRequest as GatewayRefundRequest
from payments.models import (
    PAID_STATUSES,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReconciliationCursor,
    ReconciliationKind,
    ReconciliationRun,
    ReconciliationRunStatus,
    Refund,
    RefundStatus,
    WebhookEvent,
    WebhookEventSource,
    WebhookEventStatus,
)
from payments.services.checkout import checkout_abandon, checkout_sync, payment_settle_from_intent
from payments.services.refunds.provider_answers import refund_send
from payments.services.renewals import renewal_apply_intent
from payments.services.unhomed import UNHOMED_COMMENT
from payments.services.webhooks import (
    HANDLERS,
    EventProcessingFailed,
    _is_uuid,
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
# Stored events still unhandled are retried by the events run, at most this many a run, and
# failed ones until they have been tried this many times in all.
STUCK_EVENTS_PER_RUN = 500
STUCK_EVENT_MAX_ATTEMPTS = 20


class LeaseLost(Exception):
    """Another run took this run's lease over, because this one stopped renewing it in time."""


def reconcile_pending_payments(*, older_than: timedelta) -> ReconciliationRun:
    """Settle, from Stripe's word, what has been pending longer than `older_than`; record the run.

    Examined: open checkouts (or checkouts of pending payments) opened before then, open
    checkouts whose page has expired whatever their age, and pending renewal payments whose
    PaymentIntent is known. A paid checkout activates its subscription, an expired one is
    canceled, a succeeded renewal charge renews the subscription. Refunds written before then
    but never sent (their task was lost, e.g. the broker was down) are sent.
    """

    def work(run: ReconciliationRun) -> None:
        _settle_pending(run, older_than)
        _send_unsent_refunds(run, older_than=older_than)

    return _execute(ReconciliationKind.PENDING_PAYMENTS, work)


def reconcile_events() -> ReconciliationRun:
    """Store the Stripe events we never received since the last run, and handle them oldest first.

    The first run ever reads back `RECONCILIATION_EVENTS_LOOKBACK`. Events of types no
    handler cares about are read but not stored. Events stored longer ago than
    `RECONCILIATION_PENDING_AFTER` but never handled (their task was lost) are handled too.
    """
    return _execute(ReconciliationKind.EVENTS, _feed_events)


def unbooked_charges_window() -> CreatedRange:
    """Return the last UNBOOKED_CHARGES_LOOKBACK, on the billing clock.

    The provider stamps charges with its own time, which is ours: real time in production, the
    moved billing clock in the demo (the sandbox follows it), so the window is read from
    `core.clock` like every other "now" of the money paths.
    """
    now = clock.now()
    return CreatedRange(start=now - settings.UNBOOKED_CHARGES_LOOKBACK, end=now)


def reconcile_unbooked_charges(*, window: CreatedRange | None = None) -> ReconciliationRun:
    """Book every succeeded Stripe charge of the window that our rows do not show as paid.

    The window defaults to `unbooked_charges_window()`. Each charge is settled by
    `charge_settle_unbooked`: it gives the access it paid for, or is refunded in full. The run
    lists what it fixed; the daily report shows those fixes instead of "missing with us".
    """
    looked_at = window or unbooked_charges_window()
    return _execute(ReconciliationKind.UNBOOKED_CHARGES, lambda run: _settle_unbooked_charges(run, looked_at))


def unbooked_charges_fixed(*, charge_ids: list[str], since: datetime) -> dict[str, dict[str, Any]]:
    """Return, by charge id, what the unbooked-charges runs started since then did about these charges."""
    wanted, found = set(charge_ids), {}
    runs = ReconciliationRun.objects.filter(
        kind=ReconciliationKind.UNBOOKED_CHARGES, fixed__gt=0, started_at__gte=since
    )
    for fixes in runs.values_list("fixes", flat=True).iterator():
        for fix in fixes:
            if isinstance(fix, dict) and fix.get("charge") in wanted:
                found[fix["charge"]] = fix
    return found


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
            payment=payment, intent=get_gateway().retrieve_payment(payment.stripe_payment_intent_id)
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


# --- charges without a booking and refunds never sent ---------------------------------


def charge_settle_unbooked(charge: ChargeInfo) -> str | None:
    """Book a succeeded Stripe charge that our rows do not show as paid; say what was done.

    The charge's PaymentIntent (re-read, never trusted from a list) names our payment or
    checkout in its metadata. The payment is then settled by the same services a webhook
    uses, which start or renew the subscription it was for, or refund it in full when that
    is no longer possible. A charge of ours whose rows are gone is refunded at Stripe
    (key `unbooked-charge:<charge id>`). Returns None when there was nothing to do.
    """
    if charge.status != "succeeded" or not charge.payment_intent_id:
        return None
    payment = Payment.objects.filter(stripe_payment_intent_id=charge.payment_intent_id).first()
    if payment is not None and payment.status in PAID_STATUSES:
        return None
    gateway = get_gateway()
    intent = gateway.retrieve_payment(charge.payment_intent_id)
    payment = payment or _payment_named_in(intent.metadata)
    if payment is None:
        return _refund_rowless_charge(charge, intent.metadata)
    if payment.status in PAID_STATUSES:
        return None
    checkout = payment.checkout_sessions.exclude(stripe_session_id=None).order_by("-created_at").first()
    if checkout is not None and checkout.stripe_session_id:
        checkout_sync(stripe_session_id=checkout.stripe_session_id)
    elif payment.kind == PaymentKind.RENEWAL:
        renewal_apply_intent(payment=payment, intent=intent)
    else:
        payment_settle_from_intent(payment=payment, intent=intent)
    payment.refresh_from_db()
    refunded = payment.refunds.filter(comment=UNHOMED_COMMENT).exists()
    return "refunded" if refunded else "booked"


def _payment_named_in(metadata: dict[str, str]) -> Payment | None:
    payment_id, checkout_id = metadata.get("payment_id"), metadata.get("checkout_id")
    if payment_id and _is_uuid(payment_id):
        found = Payment.objects.filter(pk=payment_id).first()
        if found is not None:
            return found
    if checkout_id and _is_uuid(checkout_id):
        checkout = CheckoutSession.objects.filter(pk=checkout_id).select_related("payment").first()
        if checkout is not None:
            return checkout.payment
    return None


def _refund_rowless_charge(charge: ChargeInfo, metadata: dict[str, str]) -> str:
    """Give back a charge made for our rows that no longer exist; leave anyone else's alone."""
    if not (metadata.get("payment_id") or metadata.get("checkout_id")):
        logger.error("Stripe charge %s is not ours (no metadata of ours): left alone", charge.id)
        return "not_ours"
    left = charge.amount - charge.amount_refunded
    if left > 0:
        get_gateway().create_refund(
            GatewayRefundRequest(
                payment_intent_id=charge.payment_intent_id or "",
                amount=left,
                reason="duplicate",
                metadata={"unbooked_charge": charge.id},
                idempotency_key=f"unbooked-charge:{charge.id}",
            )
        )
    logger.error("Stripe charge %s names rows we do not have: refunded at Stripe", charge.id)
    return "refunded_without_row"


def _settle_unbooked_charges(run: ReconciliationRun, window: CreatedRange) -> None:
    """Book every succeeded charge of the window our rows miss; note each in the run."""
    for charge in get_gateway().list_charges(window):
        _lease_keep(run)
        run.examined += 1
        try:
            outcome = charge_settle_unbooked(charge)
        except Exception as exc:
            logger.warning("reconciliation could not settle charge %s", charge.id, exc_info=True)
            _note_error(run, f"charge {charge.id}: {type(exc).__name__}: {exc}")
            continue
        if outcome is not None:
            fix = {
                "charge": charge.id,
                "amount": charge.amount,
                "currency": charge.currency,
                "outcome": outcome,
            }
            _note_fix(run, fix)


def _send_unsent_refunds(run: ReconciliationRun, *, older_than: timedelta) -> None:
    """Send the refunds that were written but never reached Stripe (same key: never twice)."""
    cutoff = timezone.now() - older_than
    unsent = Refund.objects.filter(
        status=RefundStatus.PENDING, stripe_refund_id__isnull=True, created_at__lte=cutoff
    ).select_related("payment")
    for refund in unsent.order_by("created_at")[:FIXES_KEPT]:
        _lease_keep(run)
        run.examined += 1
        try:
            sent = refund_send(refund=refund)
        except Exception as exc:
            _note_error(run, f"refund {refund.pk}: {type(exc).__name__}: {exc}")
            continue
        _note_fix(run, {"refund": str(refund.pk), "payment": str(refund.payment_id), "status": sent.status})


# --- missed events ------------------------------------------------------------------------


def _feed_events(run: ReconciliationRun) -> None:
    cursor = ReconciliationCursor.objects.get(kind=run.kind)
    if cursor.last_event_created_at is None:
        created_after = timezone.now() - settings.RECONCILIATION_EVENTS_LOOKBACK
    else:
        created_after = cursor.last_event_created_at - EVENTS_OVERLAP
    stuck_before = timezone.now() - settings.RECONCILIATION_PENDING_AFTER
    newest, missed = _store_missed_events(run, created_after, stuck_before=stuck_before)
    missed += _stuck_events(stuck_before, already=[pk for pk, _ in missed])
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


def _stuck_events(stuck_before: datetime, *, already: list[int]) -> list[tuple[int, bool]]:
    """Return stored events never handled (their task was lost) or failed and worth retrying.

    Read from our own table, not from Stripe's list, so an event stuck for longer than the
    list's window is still retried. Returned newest first, like the list's order.
    """
    stuck = (
        WebhookEvent.objects.filter(
            Q(status=WebhookEventStatus.RECEIVED)
            | Q(status=WebhookEventStatus.FAILED, attempts__lt=STUCK_EVENT_MAX_ATTEMPTS),
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
