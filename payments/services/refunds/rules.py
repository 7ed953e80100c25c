"""The rules of refunding, stated once: what is left, what needs an approval, what ends access.

REFUND_APPROVAL_THRESHOLD applies to what a payment has refunded in total (succeeded,
pending and awaiting approval, with the new refund), decided under the payment's row lock,
so that refunding in parts, one after the other or at once, never slips past the approval.

These functions only read. Called on a payment the caller has locked, they decide; on one
read without its lock (a form, a confirmation page) they are a hint.
"""

import uuid

from django.conf import settings
from django.db.models import Sum
from django.utils.translation import gettext_noop

from core.errors import DomainError
from payments.models import Payment, PaymentKind, PaymentStatus, Refund, RefundStatus

# Refunds that hold part of a payment: nobody else may refund that part meanwhile.
RESERVING_STATUSES = (RefundStatus.AWAITING_APPROVAL, RefundStatus.PENDING, RefundStatus.SUCCEEDED)
REFUNDABLE_PAYMENT_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)


class PaymentNotRefundable(DomainError):
    code = "payment_not_refundable"
    message = gettext_noop("Only a paid payment with something left to refund can be refunded.")


def refund_reserved_amount(*, payment: Payment) -> int:
    """Return how much of a payment is refunded or held by refunds still under way."""
    reserved = payment.refunds.filter(status__in=RESERVING_STATUSES).aggregate(total=Sum("amount"))["total"]
    # Refunds made in the provider's dashboard reach refunded_amount even before their row exists.
    return max(reserved or 0, payment.refunded_amount)


def refund_left_amount(*, payment: Payment) -> int:
    """Return how much of a payment may still be refunded."""
    if payment.status not in REFUNDABLE_PAYMENT_STATUSES:
        return 0
    return max(payment.amount - refund_reserved_amount(payment=payment), 0)


def refund_approval_threshold() -> int:
    """Return the total a payment's refunds may reach (minor units) without a second staff member."""
    return int(settings.REFUND_APPROVAL_THRESHOLD)


def refund_needs_approval(*, payment: Payment, amount: int) -> bool:
    """Return whether refunding `amount` more of a payment must wait for a second staff member.

    The threshold counts everything the payment has refunded or holds for refunds under way,
    this one included, so that refunding in parts never slips under it. Decisive only for a
    payment locked by the caller; otherwise a hint (e.g. the confirmation page).
    """
    return refund_reserved_amount(payment=payment) + amount > refund_approval_threshold()


def refund_leaves_nothing(*, payment: Payment, amount: int) -> bool:
    """Return whether refunding `amount` more leaves nothing of a payment to refund."""
    return refund_reserved_amount(payment=payment) + amount >= payment.amount


def refund_access_default(*, payment: Payment, amount: int) -> bool:
    """Return whether a refund ends access unless staff choose.

    A refund that leaves nothing of the payment (a full refund, or the rest after partial
    ones) ends access; a partial one keeps it, and so does refunding a period that a later
    payment has already followed (the later period is paid for). Refunding a plan change's
    payment never does: the period is paid by the payment that paid it, and only the upgrade's
    difference is given back (the tariff stays; staff move it back with another plan change).
    """
    if payment.kind == PaymentKind.CHANGE:
        return False
    return refund_leaves_nothing(payment=payment, amount=amount) and not later_period_paid(payment=payment)


def later_period_paid(*, payment: Payment) -> bool:
    """Return whether another payment of the subscription still stands for time to its period end or later.

    A later period paid, or the rest of this one: an upgrade's prorated charge ends with the
    period it was taken in, and while it stands that period is paid for (its access is kept,
    not its money kept for nothing). Read under the subscription's lock, which renewals take before they book a payment, so a
    renewal is either seen here or books after the cancellation (and then finds no home and
    is refunded).
    """
    if payment.period_end is None:
        return False
    return (
        Payment.objects.filter(
            subscription_id=payment.subscription_id,
            status__in=REFUNDABLE_PAYMENT_STATUSES,
            period_end__gte=payment.period_end,
        )
        .exclude(pk=payment.pk)
        .exists()
    )


def refund_for_request_key(*, request_key: uuid.UUID | None) -> Refund | None:
    """Return the refund a staff form's token (`request_key`) already made, if any.

    A second submission of one form (a double click, a reload) finds the first one's refund
    instead of refunding again. Decisive under the payment's row lock (`refund_create`).
    """
    if request_key is None:
        return None
    return Refund.objects.filter(request_key=request_key).first()


def refund_audit_reason(refund: Refund) -> str:
    """Return why a refund is made, as the audit log keeps it: its reason code and comment."""
    return f"{refund.reason}: {refund.comment}" if refund.comment else refund.reason
