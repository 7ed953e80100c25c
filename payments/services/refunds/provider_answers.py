"""The provider's answers to our refunds, and the refunds its events report.

A refund is sent outside any lock with the idempotency key `refund:<refund id>`, so a
repeated call for the same row returns the same refund at the provider; the answer is then
applied under the locks: succeeded moves `refunded_amount` forward, pending waits for the
provider's event, failed releases the amount. Statuses never move back from a final one,
and amounts only move forward, so a late or repeated answer or event never undoes a refund.

A refund that ends access cancels the subscription once the refund has succeeded (at once
when the provider answers "succeeded", otherwise when its event says so): a refund that
fails never takes away access that was paid for. A transaction that may move the refunded amount
or end access (both write to the subscription: its outbox, its status) locks the
subscription before the payment (`payment_lock_for_refund`).

What the provider's immediate answer to a staff member's action moved is audited as theirs; what
webhooks move later is the system's doing and is not.
"""

import logging
import uuid
from typing import cast

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Sum

from billing.locks import subscription_lock
from billing.models import Subscription, SubscriptionStatus
from billing.services import subscription_cancel_now
from core import clock
from core.audit import AuditAction, audit_changes, audit_entry_create
from core.log_context import log_context, log_context_add
from payments import facts
from payments.gateways import get_gateway
from payments.gateways.base import RefundInfo, RefundReasonCode, RefundState
from payments.gateways.base import RefundRequest as GatewayRefundRequest
from payments.gateways.errors import GatewayError
from payments.models import Payment, PaymentStatus, Provider, Refund, RefundStatus
from payments.services.refunds.rules import PaymentNotRefundable, later_period_paid, refund_audit_reason

logger = logging.getLogger(__name__)

# A refund's state at the provider, as our rows record it.
REFUND_STATUSES: dict[RefundState, RefundStatus] = {
    "pending": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}
_ACTIVE_SUBSCRIPTION = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def refund_receipt(subscription: Subscription) -> dict[str, str]:
    """Return the recipient and the item name of a refund's fiscal receipt (providers without one ignore them)."""
    return {
        "receipt_email": subscription.account.email,
        "receipt_item_name": subscription.tariff.name_for(subscription.account.language),
    }


@log_context()  # its log lines name the subscription, the payment and the refund's key
def refund_send(*, refund: Refund, actor: User | None = None) -> Refund:
    """Ask the provider for a pending refund (idempotency key `refund:<id>`) and apply the answer.

    A provider outage leaves the refund pending, to be sent again with the same key; an
    answer the provider will never change its mind about (e.g. already refunded) fails it. With an
    `actor` (the staff member whose action sends it), what the answer moved is audited.
    """
    payment = refund.payment
    log_context_add(
        subscription_id=payment.subscription_id, payment_id=payment.pk, idempotency_key=f"refund:{refund.pk}"
    )
    if not payment.provider_payment_id:  # checked when the refund was written
        raise PaymentNotRefundable(details={"payment": str(payment.pk)})
    try:
        # Our reasons (RefundReason) are the gateway's reason codes, word for word.
        reason = cast(RefundReasonCode, refund.reason)
        info = get_gateway(payment.provider).create_refund(
            GatewayRefundRequest(
                payment_intent_id=payment.provider_payment_id,
                amount=refund.amount,
                reason=reason,
                metadata={"refund_id": str(refund.pk), "payment_id": str(payment.pk)},
                idempotency_key=f"refund:{refund.pk}",
                # The refund's 54-FZ receipt (YooKassa): to the viewer, naming what was paid for.
                **refund_receipt(payment.subscription),
            )
        )
    except GatewayError as exc:
        logger.warning("refund %s: the provider refused or did not answer: %r", refund.pk, exc)
        if exc.retryable:
            Refund.objects.filter(pk=refund.pk).update(failure_reason=f"not sent yet: {exc.message}"[:255])
        else:
            with transaction.atomic():
                Payment.objects.select_for_update().get(pk=payment.pk)
                failed = Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
                    status=RefundStatus.FAILED, failure_reason=(exc.code or exc.message)[:255]
                )
                if failed and actor is not None:
                    audit_entry_create(
                        actor=actor,
                        action=AuditAction.REFUND_SEND,
                        target=refund,
                        changes={"status": (RefundStatus.PENDING, RefundStatus.FAILED)},
                        reason=refund_audit_reason(refund),
                        details={"payment": str(payment.pk), "provider_error": exc.code or exc.message},
                    )
        refund.refresh_from_db()
        return refund
    return refund_apply(refund=refund, info=info, actor=actor)


@transaction.atomic
def refund_apply(*, refund: Refund, info: RefundInfo, actor: User | None = None) -> Refund:
    """Record the provider's word on one of our refunds: its id, and its status when that moved on.

    With an `actor`, the refund's and payment's values that moved (and access, when the
    refund ended it) are audited as that staff member's doing.
    """
    payment = payment_lock_for_refund(payment_id=refund.payment_id)
    locked = Refund.objects.select_for_update().get(pk=refund.pk)
    before = _refund_snapshot(locked, payment) if actor is not None else {}
    _refund_set_from_provider(payment=payment, refund=locked, info=info)
    if actor is not None and (changes := audit_changes(before, _refund_snapshot(locked, payment))):
        audit_entry_create(
            actor=actor,
            action=AuditAction.REFUND_SEND,
            target=locked,
            changes=changes,
            reason=refund_audit_reason(locked),
            details={"payment": str(payment.pk), "currency": payment.currency},
        )
    return locked


def payment_lock_for_refund(*, payment_id: uuid.UUID) -> Payment:
    """Lock a payment's subscription, then the payment, and return the payment (in a transaction).

    For the transactions that may move a payment's refunded amount or end access: the
    viewer hears of a refund through the subscription's outbox and a cancel changes the
    subscription, so its row lock must come first, as everywhere else. The subscription of
    a payment never changes, so reading which one it is needs no lock.
    """
    subscription_id = Payment.objects.values_list("subscription_id", flat=True).get(pk=payment_id)
    subscription_lock(subscription_id)
    return Payment.objects.select_for_update(of=("self",)).get(pk=payment_id)


def _refund_snapshot(refund: Refund, payment: Payment) -> dict[str, object]:
    """Return what a refund's answer can move: its status, the payment's refund, the access."""
    subscription_status = (
        Subscription.objects.filter(pk=payment.subscription_id).values_list("status", flat=True).first()
    )
    return {
        "status": refund.status,
        "provider_refund_id": refund.provider_refund_id,
        "payment.status": payment.status,
        "payment.refunded_amount": payment.refunded_amount,
        "subscription.status": subscription_status,
    }


def refund_record_reported(*, payment: Payment, info: RefundInfo) -> Refund:
    """Apply one refund the provider reports on a payment locked by the caller.

    The caller locks the payment with `payment_lock_for_refund` (its subscription first):
    a refund that succeeds here may end access. The payment's refunded amount is left to the
    caller (the provider's own total for the payment, or the sum of its succeeded refunds).

    A refund we made is found by the provider's id, or by the refund id we put in its
    metadata (the event may arrive before the provider's answer to our call); any other
    refund was made in the provider's dashboard and gets a row of its own.
    """
    refund = (
        Refund.objects.select_for_update()
        .filter(provider=payment.provider, provider_refund_id=info.id)
        .first()
    )
    our_id = info.metadata.get("refund_id")
    if refund is None and our_id:
        try:
            refund = Refund.objects.select_for_update().filter(pk=uuid.UUID(our_id), payment=payment).first()
        except ValueError:
            refund = None
    if refund is None:
        status = REFUND_STATUSES[info.status]
        # Made in the provider's dashboard: it succeeded when the provider made it.
        succeeded_at = (info.created or clock.now()) if status == RefundStatus.SUCCEEDED else None
        refund, _ = Refund.objects.get_or_create(
            provider=payment.provider,
            provider_refund_id=info.id,
            defaults={
                "payment": payment,
                "amount": info.amount,
                "currency": payment.currency,
                "status": status,
                "comment": f"Refunded in {Provider(payment.provider).label}",
                "succeeded_at": succeeded_at,
            },
        )
        return refund
    _refund_set_from_provider(payment=payment, refund=refund, info=info, move_payment=False)
    return refund


def _refund_set_from_provider(
    *, payment: Payment, refund: Refund, info: RefundInfo, move_payment: bool = True
) -> None:
    """Move a locked refund to what the provider says; never back from a final status.

    `move_payment=False` leaves the payment's refunded amount to the caller.
    """
    changed = ["updated_at"]
    if refund.provider_refund_id != info.id:
        refund.provider_refund_id = info.id
        changed.append("provider_refund_id")
    new_status = REFUND_STATUSES[info.status]
    if refund.status == RefundStatus.PENDING and new_status != RefundStatus.PENDING:
        refund.status = new_status
        refund.failure_reason = (
            (info.failure_reason or "")[:255] if new_status != RefundStatus.SUCCEEDED else ""
        )
        changed += ["status", "failure_reason"]
        if new_status == RefundStatus.SUCCEEDED:
            refund.succeeded_at = clock.now()
            changed.append("succeeded_at")
    elif refund.status == RefundStatus.PENDING and refund.failure_reason:
        refund.failure_reason = ""
        changed.append("failure_reason")
    refund.save(update_fields=changed)
    if "status" in changed and refund.status == RefundStatus.SUCCEEDED:
        # Access first, so that the viewer's refund email, recorded as the payment moves, can
        # say that the refund ended it (as the provider's events path does).
        if refund.end_access:
            _end_access(payment)
        if move_payment:
            payment_move_refunded(payment)


def payment_move_refunded(payment: Payment) -> None:
    """Move a locked payment's refunded amount forward to what its succeeded refunds add up to."""
    succeeded = (
        payment.refunds.filter(status=RefundStatus.SUCCEEDED).aggregate(total=Sum("amount"))["total"] or 0
    )
    payment_advance_refunded(payment=payment, refunded_total=succeeded)


def payment_advance_refunded(*, payment: Payment, refunded_total: int) -> None:
    """Raise a locked payment's refunded amount to `refunded_total`, never lowering it.

    Amounts only move forward (and never past the payment), so a late or repeated answer or
    event can never undo a refund; the viewer hears of each amount that moved. The caller
    holds the subscription's lock, taken before the payment's (`payment_lock_for_refund`).
    """
    refunded = min(max(payment.refunded_amount, refunded_total), payment.amount)
    if refunded == payment.refunded_amount:
        return
    refunded_now = refunded - payment.refunded_amount
    payment.refunded_amount = refunded
    payment.status = (
        PaymentStatus.REFUNDED if refunded == payment.amount else PaymentStatus.PARTIALLY_REFUNDED
    )
    payment.save(update_fields=["refunded_amount", "status", "updated_at"])
    facts.payment_refunded.record(payment=payment, amount=refunded_now)


def _end_access(payment: Payment) -> None:
    """Cancel a refunded payment's subscription now, if it still runs.

    The caller already holds the subscription's lock (`payment_lock_for_refund`), so this
    re-lock waits for nobody and the status read under it is the one decided on.
    """
    subscription = subscription_lock(payment.subscription_id)
    if subscription.status not in _ACTIVE_SUBSCRIPTION:
        return
    if later_period_paid(payment=payment):
        # A renewal charged (perhaps while this refund was under way) paid for a later period:
        # that access is the viewer's and is kept, or we would hold a charge that gives nothing.
        logger.info(
            "refund of payment %s keeps subscription %s: a later period is paid",
            payment.pk,
            subscription.pk,
        )
        return
    subscription_cancel_now(subscription=subscription, at=clock.now())
