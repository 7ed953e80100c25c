"""Stripe events: store each once, then route it to a handler that is safe to run twice or late.

Stripe delivers events at least once and in any order, so:
- an event is stored by its id with insert-or-ignore, and a repeated delivery changes nothing;
- handlers treat the payload as a hint and re-read the object from Stripe (`checkout_sync`)
  or only ever move amounts forward (`charge.refunded`);
- every event keeps its processing status and last error, for support to see and replay.
"""

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import AuditAction, audit_entry_create
from core.errors import DomainError
from core.parsers import UnsafeInput, json_checked, text_checked
from core.queueing import enqueue_on_commit
from payments.gateways import get_gateway
from payments.gateways.base import GatewayError, GatewayEvent
from payments.models import (
    CheckoutSession,
    Payment,
    PaymentKind,
    WebhookEvent,
    WebhookEventSource,
    WebhookEventStatus,
)
from payments.services.checkout import checkout_sync

logger = logging.getLogger(__name__)
# What handles a stored event whose task could not be queued (the broker was down).
RECONCILIATION_FALLBACK = "the event stays received and the reconciliation job will process it"


class WebhookEventUnstorable(DomainError):
    """A (correctly signed) event whose ids or payload no column can hold; nothing is stored."""

    code = "invalid_payload"
    message = "The body is signed, but not a Stripe event this service can read and store."
    status_code = 400


def _unstorable_because(event: GatewayEvent) -> str | None:
    """Return why an event cannot be stored as it is, or None if it can."""
    columns = {"event_id": event.id, "type": event.type, "object_id": event.object_id or ""}
    try:
        for column, value in columns.items():
            max_length: int = getattr(WebhookEvent._meta.get_field(column), "max_length", 0)
            if len(text_checked(value)) > max_length:
                return f"{column} is longer than {max_length} characters"
        json_checked(event.object)
    except UnsafeInput as exc:
        return str(exc)
    return None


def webhook_event_record(
    *, event: GatewayEvent, source: str = WebhookEventSource.WEBHOOK
) -> tuple[WebhookEvent, bool]:
    """Store an event unless it is already stored; return it and whether it is new.

    A new event is handed to a worker once the row is committed; with the broker down it
    stays `received` for the reconciliation job. Raises WebhookEventUnstorable for an event
    no row can hold (an over-long id, NUL in text, a payload nested too deep).
    """
    reason = _unstorable_because(event)
    if reason is not None:
        logger.warning("refusing Stripe event %.80r: %s", event.id, reason)
        raise WebhookEventUnstorable(details={"reason": reason})
    try:
        with transaction.atomic():
            stored = WebhookEvent.objects.create(
                event_id=event.id,
                type=event.type,
                object_id=event.object_id or "",
                provider_created_at=event.created,
                payload=event.object,
                source=source,
            )
    except IntegrityError:
        return WebhookEvent.objects.get(event_id=event.id), False
    from payments.tasks import process_webhook_event

    enqueue_on_commit(process_webhook_event, stored.pk, fallback=RECONCILIATION_FALLBACK)
    return stored, True


def _sync_checkout_session(event: WebhookEvent) -> None:
    checkout_sync(provider_session_id=event.object_id)


def _sync_payment_intent(event: WebhookEvent) -> None:
    """Settle what a PaymentIntent event is about, from Stripe's current word on it."""
    metadata = event.payload.get("metadata") or {}
    checkout_id = metadata.get("checkout_id")
    checkout = None
    if isinstance(checkout_id, str) and _is_uuid(checkout_id):
        checkout = CheckoutSession.objects.filter(pk=checkout_id).first()
    payment = Payment.objects.filter(provider_payment_id=event.object_id).first()
    payment_id = metadata.get("payment_id")
    if payment is None and isinstance(payment_id, str) and _is_uuid(payment_id):
        payment = Payment.objects.filter(pk=payment_id).first()
    if checkout is None and payment is not None:
        checkout = payment.checkout_sessions.exclude(provider_session_id=None).first()
    if checkout is not None and checkout.provider_session_id:
        checkout_sync(provider_session_id=checkout.provider_session_id)
    elif payment is not None and payment.kind == PaymentKind.RENEWAL and event.object_id:
        # An off-session renewal whose answer we did not get (processing, or lost).
        from payments.services.renewals import renewal_apply_intent

        renewal_apply_intent(payment=payment, intent=get_gateway().retrieve_payment(event.object_id))


def _record_charge_refunds(event: WebhookEvent) -> None:
    """Apply refunds seen on a charge, including ones made in Stripe's dashboard.

    The payment is found without a lock (which payment a charge belongs to never changes),
    then locked after its subscription, as staff refunds do: what follows may end access.
    """
    from payments.services.refunds.provider_answers import (
        payment_advance_refunded,
        payment_lock_for_refund,
        refund_record_from_stripe,
    )

    charge: dict[str, Any] = event.payload
    intent_id = charge.get("payment_intent")
    payment_id = (
        Payment.objects.filter(provider_payment_id=intent_id).values_list("pk", flat=True).first()
        if intent_id
        else None
    ) or Payment.objects.filter(provider_charge_id=charge.get("id")).values_list("pk", flat=True).first()
    if payment_id is None:
        return
    with transaction.atomic():
        payment = payment_lock_for_refund(payment_id=payment_id)
        for refund in (charge.get("refunds") or {}).get("data") or []:
            # Ours (by Stripe id or our id in its metadata) moves on; a dashboard one gets a row.
            refund_record_from_stripe(payment=payment, data=refund)
        payment_advance_refunded(payment=payment, refunded_total=int(charge.get("amount_refunded") or 0))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


HANDLERS: dict[str, Callable[[WebhookEvent], None]] = {
    "checkout.session.completed": _sync_checkout_session,
    "checkout.session.async_payment_succeeded": _sync_checkout_session,
    "checkout.session.async_payment_failed": _sync_checkout_session,
    "checkout.session.expired": _sync_checkout_session,
    "payment_intent.succeeded": _sync_payment_intent,
    "payment_intent.payment_failed": _sync_payment_intent,
    "charge.refunded": _record_charge_refunds,
}


class EventProcessingFailed(Exception):
    """A handler failed; the event is marked failed and may be retried."""

    def __init__(self, event_id: str, retryable: bool):
        self.retryable = retryable
        super().__init__(f"processing of {event_id} failed")


def webhook_event_process(*, event_pk: int) -> WebhookEvent | None:
    """Run the handler of a stored event once; record its status and error.

    The event row is locked while it is handled, so concurrent workers cannot handle one
    event twice; a worker that finds it locked leaves it to the one holding it.
    Raises `EventProcessingFailed` after recording a failure.
    """
    failure: EventProcessingFailed | None = None
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=event_pk).first()
        if event is None or event.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
            return event
        handler = HANDLERS.get(event.type)
        event.attempts += 1
        if handler is None:
            event.status = WebhookEventStatus.IGNORED
        else:
            try:
                with transaction.atomic():
                    handler(event)
                event.status, event.last_error = WebhookEventStatus.PROCESSED, ""
            except Exception as exc:
                logger.exception("Stripe event %s (%s) failed", event.event_id, event.type)
                event.status, event.last_error = (
                    WebhookEventStatus.FAILED,
                    f"{type(exc).__name__}: {exc}"[:2000],
                )
                failure = EventProcessingFailed(
                    event.event_id, retryable=not isinstance(exc, GatewayError) or exc.retryable
                )
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "last_error", "attempts", "processed_at"])
    if failure is not None:
        raise failure
    return event


@transaction.atomic
def webhook_event_reprocess(*, event: WebhookEvent, actor: User | None = None, reason: str = "") -> None:
    """Mark a stored event to be handled again and queue it (support's replay from admin).

    A replay by a staff member (`actor`) is recorded in the audit log with the status it
    left; the worker's outcome is the event's own status and error. A broker outage does
    not fail the replay: the event stays `received`, which the reconciliation job picks up.
    """
    from payments.tasks import process_webhook_event

    locked = WebhookEvent.objects.select_for_update().get(pk=event.pk)
    previous = locked.status
    locked.status = WebhookEventStatus.RECEIVED
    locked.save(update_fields=["status"])
    if actor is not None:
        audit_entry_create(
            actor=actor,
            action=AuditAction.WEBHOOK_EVENT_REPROCESS,
            target=locked,
            changes={"status": (previous, WebhookEventStatus.RECEIVED)},
            reason=reason,
            details={"event_id": locked.event_id, "type": locked.type, "attempts": locked.attempts},
        )
    enqueue_on_commit(process_webhook_event, event.pk, fallback=RECONCILIATION_FALLBACK)
