"""Refunds made by staff and refund requests made by viewers.

Money path of one refund, so that no double click, second agent or retry refunds twice:
1. under the payment's row lock, what is left is computed counting every refund that is
   awaiting approval, pending or succeeded, and the Refund row is written (reserving that
   amount) and committed;
2. outside any lock, Stripe is asked with the idempotency key `refund:<refund id>`, so a
   repeated call for the same row returns the same Stripe refund;
3. the answer is applied under the lock: succeeded moves `refunded_amount` forward,
   pending waits for `charge.refunded`, failed releases the amount.

A refund that ends access cancels the subscription once the refund has succeeded (at once
when Stripe answers "succeeded", otherwise when the webhook says so): a refund that fails
never takes away access that was paid for.

Locks follow the service's one order, account → subscription → payment → refund request →
refund, so that two staff members deciding at once, or a decision racing a webhook, wait
for each other instead of deadlocking. A transaction that may move the refunded amount or
end access (both write to the subscription: its outbox, its status) locks the subscription
before the payment (`payment_lock_for_refund`).

REFUND_APPROVAL_THRESHOLD applies to what a payment has refunded in total (succeeded,
pending and awaiting approval, with the new refund), decided under the payment's row lock,
so that refunding in parts, one after the other or at once, never slips past the approval.

Every step a staff member takes (a refund, its approval or rejection, a viewer's request
approved or rejected) is recorded in the audit log (core.audit) in its transaction, and so
is what Stripe's immediate answer moved (refund and payment status, refunded amount, access);
what webhooks move later is the system's doing and is not.
"""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext_noop
from rest_framework import status

from accounts.models import BillingAccount
from billing.locks import account_lock, subscription_lock
from billing.models import Subscription, SubscriptionStatus
from billing.services import subscription_cancel_now
from core import clock
from core.audit import AuditAction, audit_changes, audit_entry_create
from core.errors import DomainError, NotFound
from core.money import format_money
from payments import facts
from payments.gateways import get_gateway
from payments.gateways.base import GatewayError, RefundInfo
from payments.gateways.base import RefundRequest as GatewayRefundRequest
from payments.models import (
    Payment,
    PaymentStatus,
    Refund,
    RefundReason,
    RefundRequest,
    RefundRequestStatus,
    RefundStatus,
)

logger = logging.getLogger(__name__)

# Refunds that hold part of a payment: nobody else may refund that part meanwhile.
RESERVING_STATUSES = (RefundStatus.AWAITING_APPROVAL, RefundStatus.PENDING, RefundStatus.SUCCEEDED)
REFUNDABLE_PAYMENT_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)
# Reasons Stripe itself knows; ours that it does not are sent without a reason.
STRIPE_REASONS = {
    RefundReason.REQUESTED_BY_CUSTOMER: "requested_by_customer",
    RefundReason.DUPLICATE: "duplicate",
    RefundReason.FRAUDULENT: "fraudulent",
}
_ACTIVE_SUBSCRIPTION = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


class PaymentNotRefundable(DomainError):
    code = "payment_not_refundable"
    message = gettext_noop("Only a paid payment with something left to refund can be refunded.")


class RefundAmountTooLarge(DomainError):
    code = "refund_amount_too_large"
    message = gettext_noop("The amount is more than what is left to refund.")


class RefundNotAwaitingApproval(DomainError):
    code = "refund_not_awaiting_approval"
    message = gettext_noop("This refund is not waiting for an approval.")
    status_code = status.HTTP_409_CONFLICT


class RefundApprovalNotAllowed(DomainError):
    code = "refund_approval_not_allowed"
    message = gettext_noop(
        "A refund must be approved by another staff member with the right to approve refunds."
    )
    status_code = status.HTTP_403_FORBIDDEN


class RefundWindowClosed(DomainError):
    code = "refund_window_closed"
    message = gettext_noop("This payment is too old to ask for a refund.")


class RefundRequestExists(DomainError):
    code = "refund_request_exists"
    message = gettext_noop("A refund request for this payment is already open.")
    status_code = status.HTTP_409_CONFLICT


class RefundRequestNotOpen(DomainError):
    code = "refund_request_not_open"
    message = gettext_noop("This refund request has already been decided.")
    status_code = status.HTTP_409_CONFLICT


# --- amounts ---------------------------------------------------------------------------


def refund_reserved_amount(*, payment: Payment) -> int:
    """Return how much of a payment is refunded or held by refunds still under way."""
    reserved = payment.refunds.filter(status__in=RESERVING_STATUSES).aggregate(total=Sum("amount"))["total"]
    # Refunds made in Stripe's dashboard reach refunded_amount even before their row exists.
    return max(reserved or 0, payment.refunded_amount)


def refund_left_amount(*, payment: Payment) -> int:
    """Return how much of a payment may still be refunded."""
    if payment.status not in REFUNDABLE_PAYMENT_STATUSES:
        return 0
    return max(payment.amount - refund_reserved_amount(payment=payment), 0)


def refund_needs_approval(*, payment: Payment, amount: int) -> bool:
    """Return whether refunding `amount` more of a payment must wait for a second staff member.

    The threshold counts everything the payment has refunded or holds for refunds under way,
    this one included, so that refunding in parts never slips under it. Decisive only for a
    payment locked by the caller; otherwise a hint (e.g. the confirmation page).
    """
    return refund_reserved_amount(payment=payment) + amount > settings.REFUND_APPROVAL_THRESHOLD


def refund_access_default(*, payment: Payment, amount: int) -> bool:
    """Return whether a refund ends access unless staff choose.

    A refund that leaves nothing of the payment (a full refund, or the rest after partial
    ones) ends access; a partial one keeps it, and so does refunding a period that a later
    payment has already followed (the later period is paid for).
    """
    whole = refund_reserved_amount(payment=payment) + amount >= payment.amount
    return whole and not _later_period_paid(payment)


# --- staff refunds ---------------------------------------------------------------------


def refund_create(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    comment: str = "",
    end_access: bool | None = None,
    created_by: User | None = None,
    request_key: uuid.UUID | None = None,
) -> Refund:
    """Refund `amount` of a payment at Stripe, once per `request_key` whatever the submissions.

    `end_access=None` applies the default rule (a full refund ends access). A refund above
    REFUND_APPROVAL_THRESHOLD is only recorded, awaiting a second staff member's approval.
    Raises `PaymentNotRefundable` or `RefundAmountTooLarge` with nothing written or sent.
    """
    refund, created = _refund_reserve(
        payment=payment,
        amount=amount,
        reason=reason,
        comment=comment,
        end_access=end_access,
        created_by=created_by,
        request_key=request_key,
    )
    if refund.status == RefundStatus.PENDING and refund.stripe_refund_id is None:
        # A repeated submission of a refund whose first call got no answer asks again with the
        # same key: Stripe returns the refund it made, or makes it now, never a second one.
        return refund_send(refund=refund, actor=created_by)
    if not created:
        logger.info("refund %s was already submitted with this form", refund.pk)
    return refund


def _refund_reserve(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    comment: str,
    end_access: bool | None,
    created_by: User | None,
    request_key: uuid.UUID | None,
) -> tuple[Refund, bool]:
    try:
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            # Under the lock: a double click waits here for the first submission to commit,
            # then finds its row instead of reserving the amount a second time.
            if request_key is not None:
                existing = Refund.objects.filter(request_key=request_key).first()
                if existing is not None:
                    return existing, False
            return _refund_insert(
                payment=locked,
                amount=amount,
                reason=reason,
                comment=comment,
                end_access=end_access,
                created_by=created_by,
                request_key=request_key,
            ), True
    except IntegrityError:
        # The same token committed by a request that did not take the lock (should not happen).
        if request_key is None:
            raise
        return Refund.objects.get(request_key=request_key), False


def _refund_insert(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    comment: str,
    end_access: bool | None,
    created_by: User | None,
    request_key: uuid.UUID | None,
) -> Refund:
    """Write a refund row for a payment locked by the caller, reserving its amount."""
    if payment.status not in REFUNDABLE_PAYMENT_STATUSES or not payment.stripe_payment_intent_id:
        raise PaymentNotRefundable(details={"payment": str(payment.pk), "status": payment.status})
    left = refund_left_amount(payment=payment)
    if amount <= 0 or amount > left:
        raise RefundAmountTooLarge(
            details={"amount": amount, "left": left, "left_display": format_money(left, payment.currency)}
        )
    if end_access is None:
        end_access = refund_access_default(payment=payment, amount=amount)
    above_threshold = refund_needs_approval(payment=payment, amount=amount)
    refund = Refund.objects.create(
        payment=payment,
        amount=amount,
        currency=payment.currency,
        status=RefundStatus.AWAITING_APPROVAL if above_threshold else RefundStatus.PENDING,
        reason=reason,
        comment=comment,
        end_access=end_access,
        created_by=created_by,
        request_key=request_key,
    )
    if created_by is not None:
        audit_entry_create(
            actor=created_by,
            action=AuditAction.REFUND_CREATE,
            target=refund,
            changes={"status": (None, refund.status), "amount": (None, amount)},
            reason=_reason_text(refund),
            details={
                "payment": str(payment.pk),
                "currency": payment.currency,
                "left_to_refund": [left, left - amount],
                "end_access": end_access,
            },
        )
    return refund


def _reason_text(refund: Refund) -> str:
    """Return why a refund is made, as the audit log keeps it: its reason code and comment."""
    return f"{refund.reason}: {refund.comment}" if refund.comment else refund.reason


def refund_send(*, refund: Refund, actor: User | None = None) -> Refund:
    """Ask Stripe for a pending refund (idempotency key `refund:<id>`) and apply the answer.

    A Stripe outage leaves the refund pending, to be sent again with the same key; an
    answer Stripe will never change its mind about (e.g. already refunded) fails it. With an
    `actor` (the staff member whose action sends it), what the answer moved is audited.
    """
    payment = refund.payment
    if not payment.stripe_payment_intent_id:  # checked when the refund was written
        raise PaymentNotRefundable(details={"payment": str(payment.pk)})
    try:
        info = get_gateway().create_refund(
            GatewayRefundRequest(
                payment_intent_id=payment.stripe_payment_intent_id,
                amount=refund.amount,
                reason=STRIPE_REASONS.get(RefundReason(refund.reason)),
                metadata={"refund_id": str(refund.pk), "payment_id": str(payment.pk)},
                idempotency_key=f"refund:{refund.pk}",
            )
        )
    except GatewayError as exc:
        logger.warning("refund %s: Stripe refused or did not answer: %r", refund.pk, exc)
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
                        reason=_reason_text(refund),
                        details={"payment": str(payment.pk), "stripe_error": exc.code or exc.message},
                    )
        refund.refresh_from_db()
        return refund
    return refund_apply(refund=refund, info=info, actor=actor)


@transaction.atomic
def refund_apply(*, refund: Refund, info: RefundInfo, actor: User | None = None) -> Refund:
    """Record Stripe's word on one of our refunds: its id, and its status when that moved on.

    With an `actor`, the refund's and payment's values that moved (and access, when the
    refund ended it) are audited as that staff member's doing.
    """
    payment = payment_lock_for_refund(payment_id=refund.payment_id)
    locked = Refund.objects.select_for_update().get(pk=refund.pk)
    before = _refund_snapshot(locked, payment) if actor is not None else {}
    _refund_set_from_stripe(
        payment=payment,
        refund=locked,
        stripe_id=info.id,
        stripe_status=info.status,
        failure_reason=info.failure_reason,
    )
    if actor is not None and (changes := audit_changes(before, _refund_snapshot(locked, payment))):
        audit_entry_create(
            actor=actor,
            action=AuditAction.REFUND_SEND,
            target=locked,
            changes=changes,
            reason=_reason_text(locked),
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
        "stripe_refund_id": refund.stripe_refund_id,
        "payment.status": payment.status,
        "payment.refunded_amount": payment.refunded_amount,
        "subscription.status": subscription_status,
    }


def refund_record_from_stripe(*, payment: Payment, data: dict[str, Any]) -> Refund:
    """Apply one refund listed on a `charge.refunded` event to a payment locked by the caller.

    The caller locks the payment with `payment_lock_for_refund` (its subscription first):
    a refund that succeeds here may end access.

    A refund we made is found by its Stripe id, or by the refund id we put in its metadata
    (the event may arrive before Stripe's answer to our call); any other refund was made in
    Stripe's dashboard and gets a row of its own.
    """
    refund = Refund.objects.select_for_update().filter(stripe_refund_id=data["id"]).first()
    our_id = (data.get("metadata") or {}).get("refund_id")
    if refund is None and isinstance(our_id, str):
        try:
            refund = Refund.objects.select_for_update().filter(pk=uuid.UUID(our_id), payment=payment).first()
        except ValueError:
            refund = None
    if refund is None:
        status = _status_from_stripe(data.get("status"))
        # Made in Stripe's dashboard: it succeeded when Stripe made it.
        succeeded_at = _stripe_time(data.get("created")) if status == RefundStatus.SUCCEEDED else None
        refund, _ = Refund.objects.get_or_create(
            stripe_refund_id=data["id"],
            defaults={
                "payment": payment,
                "amount": data["amount"],
                "currency": payment.currency,
                "status": status,
                "comment": "Refunded in Stripe",
                "succeeded_at": succeeded_at,
            },
        )
        return refund
    _refund_set_from_stripe(
        payment=payment,
        refund=refund,
        stripe_id=data["id"],
        stripe_status=data.get("status"),
        failure_reason=data.get("failure_reason"),
        move_payment=False,
    )
    return refund


def _refund_set_from_stripe(
    *,
    payment: Payment,
    refund: Refund,
    stripe_id: str,
    stripe_status: str | None,
    failure_reason: str | None,
    move_payment: bool = True,
) -> None:
    """Move a locked refund to what Stripe says; never back from a final status.

    `move_payment=False` leaves the payment's refunded amount to the caller (the
    `charge.refunded` handler takes it from the charge's own total).
    """
    changed = ["updated_at"]
    if refund.stripe_refund_id != stripe_id:
        refund.stripe_refund_id = stripe_id
        changed.append("stripe_refund_id")
    new_status = _status_from_stripe(stripe_status)
    if refund.status == RefundStatus.PENDING and new_status != RefundStatus.PENDING:
        refund.status = new_status
        refund.failure_reason = (failure_reason or "")[:255] if new_status != RefundStatus.SUCCEEDED else ""
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
        # say that the refund ended it (as the `charge.refunded` path does).
        if refund.end_access:
            _end_access(payment)
        if move_payment:
            _payment_move_refunded(payment)


def _payment_move_refunded(payment: Payment) -> None:
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
    if _later_period_paid(payment):
        # A renewal charged (perhaps while this refund was under way) paid for a later period:
        # that access is the viewer's and is kept, or we would hold a charge that gives nothing.
        logger.info(
            "refund of payment %s keeps subscription %s: a later period is paid",
            payment.pk,
            subscription.pk,
        )
        return
    subscription_cancel_now(subscription=subscription, at=clock.now())


def _later_period_paid(payment: Payment) -> bool:
    """Return whether another payment of the subscription paid a later period and still stands.

    Read under the subscription's lock, which renewals take before they book a payment, so a
    renewal is either seen here or books after the cancellation (and then finds no home and
    is refunded).
    """
    if payment.period_end is None:
        return False
    return (
        Payment.objects.filter(
            subscription_id=payment.subscription_id,
            status__in=REFUNDABLE_PAYMENT_STATUSES,
            period_end__gt=payment.period_end,
        )
        .exclude(pk=payment.pk)
        .exists()
    )


def _stripe_time(created: Any) -> datetime:
    """Return a Stripe `created` (Unix seconds) as an aware UTC instant, or now if it is missing."""
    if isinstance(created, int):
        return datetime.fromtimestamp(created, UTC)
    return clock.now()


def _status_from_stripe(stripe_status: str | None) -> str:
    return {
        "succeeded": RefundStatus.SUCCEEDED,
        "failed": RefundStatus.FAILED,
        "canceled": RefundStatus.CANCELED,
    }.get(stripe_status or "", RefundStatus.PENDING)


# --- approvals -------------------------------------------------------------------------


def refund_approve(*, refund: Refund, approver: User) -> Refund:
    """Approve a refund above the threshold and send it to Stripe.

    The approver must hold `payments.approve_refund` and must not be the one who asked for it.
    """
    with transaction.atomic():
        Payment.objects.select_for_update().get(pk=refund.payment_id)
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status != RefundStatus.AWAITING_APPROVAL:
            raise RefundNotAwaitingApproval(details={"refund": str(locked.pk), "status": locked.status})
        if locked.created_by_id == approver.pk or not approver.has_perm("payments.approve_refund"):
            raise RefundApprovalNotAllowed(details={"refund": str(locked.pk)})
        locked.status = RefundStatus.PENDING
        locked.approved_by = approver
        locked.save(update_fields=["status", "approved_by", "updated_at"])
        audit_entry_create(
            actor=approver,
            action=AuditAction.REFUND_APPROVE,
            target=locked,
            changes={
                "status": (RefundStatus.AWAITING_APPROVAL, RefundStatus.PENDING),
                "approved_by": (None, approver.get_username()),
            },
            reason=_reason_text(locked),
            details={"payment": str(locked.payment_id), "amount": locked.amount, "currency": locked.currency},
        )
    return refund_send(refund=locked, actor=approver)


@transaction.atomic
def refund_reject(*, refund: Refund, rejected_by: User, note: str = "") -> Refund:
    """Refuse a refund awaiting approval: nothing is sent, its amount is released."""
    Payment.objects.select_for_update().get(pk=refund.payment_id)
    locked = Refund.objects.select_for_update().get(pk=refund.pk)
    if locked.status != RefundStatus.AWAITING_APPROVAL:
        raise RefundNotAwaitingApproval(details={"refund": str(locked.pk), "status": locked.status})
    if locked.created_by_id == rejected_by.pk or not rejected_by.has_perm("payments.approve_refund"):
        raise RefundApprovalNotAllowed(details={"refund": str(locked.pk)})
    locked.status = RefundStatus.CANCELED
    locked.failure_reason = f"rejected by {rejected_by.get_username()}: {note}".strip(": ")[:255]
    locked.save(update_fields=["status", "failure_reason", "updated_at"])
    audit_entry_create(
        actor=rejected_by,
        action=AuditAction.REFUND_REJECT,
        target=locked,
        changes={"status": (RefundStatus.AWAITING_APPROVAL, RefundStatus.CANCELED)},
        reason=note,
        details={"payment": str(locked.payment_id), "amount": locked.amount, "currency": locked.currency},
    )
    return locked


# --- viewers' refund requests ----------------------------------------------------------


def refund_request_create(*, account: BillingAccount, payment_id: uuid.UUID, reason: str) -> RefundRequest:
    """Open a viewer's request to get one of their payments back.

    Refused: another viewer's or unknown payment (`NotFound`), a payment that is not paid or
    fully refunded (`PaymentNotRefundable`), one older than REFUND_REQUEST_WINDOW_DAYS
    (`RefundWindowClosed`), and a second open request (`RefundRequestExists`).
    """
    with transaction.atomic():
        # The account first: the request's row refers to it (a key-share lock), and the order
        # puts the account before the payment. Only the payment is locked of the joined rows:
        # whose it is never changes.
        account_lock(account.pk)
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .filter(pk=payment_id, subscription__account=account)
            .first()
        )
        if payment is None:
            raise NotFound("No such payment.")
        if payment.status not in REFUNDABLE_PAYMENT_STATUSES or refund_left_amount(payment=payment) == 0:
            raise PaymentNotRefundable(details={"status": payment.status})
        window = timedelta(days=settings.REFUND_REQUEST_WINDOW_DAYS)
        if payment.paid_at is None or clock.now() > payment.paid_at + window:
            raise RefundWindowClosed(details={"window_days": settings.REFUND_REQUEST_WINDOW_DAYS})
        if payment.refund_requests.filter(status=RefundRequestStatus.OPEN).exists():
            raise RefundRequestExists()
        try:
            with transaction.atomic():
                return RefundRequest.objects.create(payment=payment, account=account, reason=reason)
        except IntegrityError as exc:
            raise RefundRequestExists() from exc


def refund_request_approve(*, refund_request: RefundRequest, staff: User, note: str = "") -> Refund:
    """Approve a viewer's request: refund what is left of the payment, access per the default rule.

    Locks the payment, then the request (the service's order, as a rejection does).
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund_request.payment_id)
        locked = RefundRequest.objects.select_for_update().get(pk=refund_request.pk)
        if locked.status != RefundRequestStatus.OPEN:
            raise RefundRequestNotOpen(details={"status": locked.status})
        refund = _refund_insert(
            payment=payment,
            amount=refund_left_amount(payment=payment),
            reason=RefundReason.REQUESTED_BY_CUSTOMER,
            comment=f"Viewer's request: {locked.reason}",
            end_access=None,
            created_by=staff,
            request_key=None,
        )
        locked.status = RefundRequestStatus.APPROVED
        locked.decided_by = staff
        locked.decided_at = clock.now()
        locked.decision_note = note
        locked.refund = refund
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "refund"])
        audit_entry_create(
            actor=staff,
            action=AuditAction.REFUND_REQUEST_APPROVE,
            target=locked,
            changes={
                "status": (RefundRequestStatus.OPEN, RefundRequestStatus.APPROVED),
                "refund": (None, refund.pk),
            },
            reason=note,
            details={"payment": str(payment.pk), "amount": refund.amount, "currency": refund.currency},
        )
    if refund.status == RefundStatus.PENDING:
        return refund_send(refund=refund, actor=staff)
    return refund


def refund_request_reject(*, refund_request: RefundRequest, staff: User, note: str) -> RefundRequest:
    """Refuse a viewer's request and email them the reason once the decision is committed.

    The payment is locked before the request, as an approval does, so that an approval and
    a rejection of one request at once wait for each other instead of deadlocking.
    """
    with transaction.atomic():
        Payment.objects.select_for_update().get(pk=refund_request.payment_id)
        locked = (
            RefundRequest.objects.select_for_update(of=("self",))
            .select_related("account", "payment")
            .get(pk=refund_request.pk)
        )
        if locked.status != RefundRequestStatus.OPEN:
            raise RefundRequestNotOpen(details={"status": locked.status})
        locked.status = RefundRequestStatus.REJECTED
        locked.decided_by = staff
        locked.decided_at = clock.now()
        locked.decision_note = note
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_entry_create(
            actor=staff,
            action=AuditAction.REFUND_REQUEST_REJECT,
            target=locked,
            changes={"status": (RefundRequestStatus.OPEN, RefundRequestStatus.REJECTED)},
            reason=note,
            details={"payment": str(locked.payment_id)},
        )
        if locked.account.email:
            transaction.on_commit(lambda: _send_rejection_email(locked))
    return locked


def _send_rejection_email(refund_request: RefundRequest) -> None:
    payment = refund_request.payment
    body = (
        f"Hello,\n\nwe looked at your request to refund the payment of "
        f"{format_money(payment.amount, payment.currency)} made on {payment.paid_at:%Y-%m-%d}, "
        f"and we cannot refund it.\n\nReason: {refund_request.decision_note}\n\n"
        "If you have questions, reply to this email.\n"
    )
    try:
        send_mail(
            "Your refund request",
            body,
            None,
            [refund_request.account.email],
        )
    except Exception:
        logger.exception("could not email the rejection of refund request %s", refund_request.pk)
