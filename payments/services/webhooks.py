"""Provider events: store each once, then act on the fact it stands for, safely twice or late.

Providers deliver events at least once, in any order, and anyone can post to the endpoint:
- an event is stored by (provider, event id) with insert-or-ignore, so a repeated delivery
  changes nothing;
- its provider's package turns it into a fact (`gateways.base.EventFact`); the handlers
  treat each fact as a hint and read the object again from the provider (`checkout_sync`,
  `renewal_apply_intent`) or only ever move amounts forward (refunds);
- every event keeps its processing status and last error, for support to see and replay.
"""

import logging
import uuid
from typing import assert_never

from django.contrib.auth.models import User
from django.db import transaction

from core import clock
from core.audit import AuditAction, audit_entry_create
from core.errors import DomainError
from core.inserts import insert_or_ignore
from core.metrics import record_webhook_handled, record_webhook_received, record_webhook_rejected
from core.parsers import UnsafeInput, json_checked, text_checked
from core.queueing import enqueue_on_commit
from core.validation import uuid_or_none
from payments.gateways import get_gateway
from payments.gateways.base import (
    CheckoutChanged,
    EventFact,
    GatewayEvent,
    PaymentChanged,
    PaymentMethodSaved,
    PaymentRefundsChanged,
    RefundChanged,
)
from payments.gateways.errors import GatewayError
from payments.models import (
    CheckoutSession,
    Payment,
    PaymentKind,
    Refund,
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
    message = "The body is signed, but not an event of the provider this service can read and store."
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
    *, provider: str, event: GatewayEvent, source: str = WebhookEventSource.WEBHOOK
) -> tuple[WebhookEvent, bool]:
    """Store a provider's event unless it is already stored; return it and whether it is new.

    A new event is handed to a worker once the row is committed; with the broker down it
    stays `received` for the reconciliation job. Raises WebhookEventUnstorable for an event
    no row can hold (an over-long id, NUL in text, a payload nested too deep).
    """
    reason = _unstorable_because(event)
    if reason is not None:
        logger.warning("refusing %s event %.80r: %s", provider, event.id, reason)
        record_webhook_rejected(provider=provider, reason=WebhookEventUnstorable.code)
        raise WebhookEventUnstorable(details={"reason": reason})
    stored = WebhookEvent(
        provider=provider,
        event_id=event.id,
        type=event.type,
        object_id=event.object_id or "",
        provider_created_at=event.created,
        payload=event.object,
        source=source,
    )
    acted_on = event_is_acted_on(provider=provider, event=event)
    if not acted_on:
        # Most of what a provider sends calls for nothing here: stored as ignored at once, with no
        # task to queue, so a lost task (a broker restart) leaves no event waiting to be handled.
        stored.status, stored.processed_at = WebhookEventStatus.IGNORED, clock.now()
    # One statement whether new or repeated (a repeat is a fifth of Stripe's deliveries), and
    # safe inside the reconciliation job's transaction: a duplicate raises nothing to roll back.
    if not insert_or_ignore(stored, conflict_fields=["event_id", "provider"]):
        record_webhook_received(provider=provider, source=source, duplicate=True)
        return WebhookEvent.objects.get(provider=provider, event_id=event.id), False
    record_webhook_received(provider=provider, source=source, duplicate=False)
    if not acted_on:
        record_webhook_handled(provider=provider, outcome=WebhookEventStatus.IGNORED)
        return stored, True
    from payments.tasks import process_webhook_event

    enqueue_on_commit(process_webhook_event, stored.pk, fallback=RECONCILIATION_FALLBACK)
    return stored, True


def webhook_event_fact(event: WebhookEvent) -> EventFact | None:
    """Return the fact a stored event stands for, read by its provider's package (None: not acted on)."""
    return get_gateway(event.provider).event_fact(
        GatewayEvent(
            id=event.event_id,
            type=event.type,
            created=event.provider_created_at,
            object_id=event.object_id or None,
            object=event.payload,
        )
    )


def event_is_acted_on(*, provider: str, event: GatewayEvent) -> bool:
    """Return whether an event of this provider stands for a fact this service acts on."""
    try:
        return get_gateway(provider).event_fact(event) is not None
    except GatewayError:
        return True  # a type we act on whose object is unreadable: store it, to fail visibly


def _act_on(provider: str, fact: EventFact) -> None:
    """Do what a fact calls for; each handler is safe to run twice, late or out of order."""
    if isinstance(fact, CheckoutChanged):
        checkout_sync(provider_session_id=fact.checkout_ref, provider=provider)
    elif isinstance(fact, PaymentChanged):
        _settle_payment(provider, fact)
    elif isinstance(fact, PaymentRefundsChanged):
        _record_payment_refunds(provider, fact)
    elif isinstance(fact, RefundChanged):
        _record_refund(provider, fact)
    elif isinstance(fact, PaymentMethodSaved):
        _settle_saved_method(provider, fact)
    else:
        assert_never(fact)


def _settle_payment(provider: str, fact: PaymentChanged) -> None:
    """Settle what a payment's event is about, from the provider's current word on it."""
    checkout = None
    if (checkout_id := uuid_or_none(fact.our_checkout_id)) is not None:
        checkout = CheckoutSession.objects.filter(pk=checkout_id, provider=provider).first()
    payment = Payment.objects.filter(provider=provider, provider_payment_id=fact.payment_ref).first()
    if payment is None and (payment_id := uuid_or_none(fact.our_payment_id)) is not None:
        payment = Payment.objects.filter(pk=payment_id, provider=provider).first()
    if checkout is None and payment is not None:
        checkout = payment.checkout_sessions.exclude(provider_session_id=None).first()
    if checkout is not None and checkout.provider_session_id:
        checkout_sync(provider_session_id=checkout.provider_session_id, provider=provider)
    elif payment is not None and payment.kind == PaymentKind.RENEWAL:
        # An off-session renewal whose answer we did not get (still processing, or lost).
        from payments.services.renewals import renewal_apply_intent

        renewal_apply_intent(payment=payment, intent=get_gateway(provider).retrieve_payment(fact.payment_ref))
    elif payment is not None and payment.kind == PaymentKind.CHANGE:
        # An upgrade's off-session charge whose answer we did not get.
        from payments.services.plan_change import plan_change_apply_intent

        plan_change_apply_intent(
            payment=payment, intent=get_gateway(provider).retrieve_payment(fact.payment_ref)
        )


def _settle_saved_method(provider: str, fact: PaymentMethodSaved) -> None:
    """Settle the trial checkout page that saved a payment method, if the event names ours."""
    checkout_id = uuid_or_none(fact.our_checkout_id)
    if checkout_id is None:
        return
    checkout = CheckoutSession.objects.filter(pk=checkout_id, provider=provider).first()
    if checkout is not None and checkout.provider_session_id:
        checkout_sync(provider_session_id=checkout.provider_session_id, provider=provider)


def _record_payment_refunds(provider: str, fact: PaymentRefundsChanged) -> None:
    """Apply the refunds a provider reports on a payment, including ones made in its dashboard.

    The payment is found without a lock (which payment a charge belongs to never changes),
    then locked after its subscription, as staff refunds do: what follows may end access.
    """
    from payments.services.refunds.provider_answers import (
        payment_advance_refunded,
        payment_lock_for_refund,
        refund_record_reported,
    )

    payment_id = _payment_id_of(provider, payment_ref=fact.payment_ref, charge_ref=fact.charge_ref)
    if payment_id is None:
        return
    with transaction.atomic():
        payment = payment_lock_for_refund(payment_id=payment_id)
        for refund in fact.refunds:
            # Ours (by the provider's id or ours in its metadata) moves on; another gets a row.
            refund_record_reported(payment=payment, info=refund)
        payment_advance_refunded(payment=payment, refunded_total=fact.refunded_total)


def _record_refund(provider: str, fact: RefundChanged) -> None:
    """Apply one refund's news (succeeded, failed, canceled) to its payment."""
    from payments.services.refunds.provider_answers import (
        payment_lock_for_refund,
        payment_move_refunded,
        refund_record_reported,
    )

    info = fact.refund
    payment_id = _payment_id_of(provider, payment_ref=info.payment_intent_id, charge_ref=info.charge_id)
    our_refund_id = uuid_or_none(info.metadata.get("refund_id"))
    if payment_id is None and our_refund_id is not None:
        payment_id = (
            Refund.objects.filter(pk=our_refund_id, provider=provider)
            .values_list("payment_id", flat=True)
            .first()
        )
    if payment_id is None:
        return
    with transaction.atomic():
        payment = payment_lock_for_refund(payment_id=payment_id)
        refund_record_reported(payment=payment, info=info)
        payment_move_refunded(payment)


def _payment_id_of(provider: str, *, payment_ref: str | None, charge_ref: str | None) -> uuid.UUID | None:
    """Return which of our payments a provider's payment (or, failing that, charge) id is."""
    ours = Payment.objects.filter(provider=provider)
    if payment_ref:
        found = ours.filter(provider_payment_id=payment_ref).values_list("pk", flat=True).first()
        if found is not None:
            return found
    if charge_ref:
        return ours.filter(provider_charge_id=charge_ref).values_list("pk", flat=True).first()
    return None


class EventProcessingFailed(Exception):
    """A handler failed; the event is marked failed and may be retried."""

    def __init__(self, event_id: str, retryable: bool):
        self.retryable = retryable
        super().__init__(f"processing of {event_id} failed")


def webhook_event_process(*, event_pk: int) -> WebhookEvent | None:
    """Act once on what a stored event tells us; record its status and error.

    The event row is locked while it is handled, so concurrent workers cannot handle one
    event twice; a worker that finds it locked leaves it to the one holding it. An event that
    stands for no fact we act on is marked ignored.
    Raises `EventProcessingFailed` after recording a failure.
    """
    failure: EventProcessingFailed | None = None
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=event_pk).first()
        if event is None or event.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
            return event
        event.attempts += 1
        try:
            fact = webhook_event_fact(event)
            if fact is None:
                event.status = WebhookEventStatus.IGNORED
            else:
                with transaction.atomic():
                    _act_on(event.provider, fact)
                event.status, event.last_error = WebhookEventStatus.PROCESSED, ""
        except Exception as exc:
            logger.exception("%s event %s (%s) failed", event.provider, event.event_id, event.type)
            event.status, event.last_error = (
                WebhookEventStatus.FAILED,
                f"{type(exc).__name__}: {exc}"[:2000],
            )
            failure = EventProcessingFailed(
                event.event_id, retryable=not isinstance(exc, GatewayError) or exc.retryable
            )
        event.processed_at = clock.now()
        event.save(update_fields=["status", "last_error", "attempts", "processed_at"])
    record_webhook_handled(provider=event.provider, outcome=event.status)
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
