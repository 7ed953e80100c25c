"""A staff member's refund: written once per form, whatever the submissions, then sent.

The refund row is written under the payment's row lock, reserving its amount, and committed
before the provider is asked (`provider_answers.refund_send`). A form's token (`request_key`)
makes every submission of one form one refund: a double click waits for the first
submission's lock, then finds its row. A refund above REFUND_APPROVAL_THRESHOLD is only
recorded, awaiting a second staff member (`approvals.py`).
"""

import logging
import uuid

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from core.audit import AuditAction, audit_entry_create
from core.errors import DomainError
from core.money import format_money
from payments.models import Payment, Refund, RefundStatus
from payments.services.refunds.provider_answers import refund_send
from payments.services.refunds.rules import (
    REFUNDABLE_PAYMENT_STATUSES,
    PaymentNotRefundable,
    refund_access_default,
    refund_audit_reason,
    refund_for_request_key,
    refund_left_amount,
    refund_needs_approval,
)

logger = logging.getLogger(__name__)


class RefundAmountTooLarge(DomainError):
    code = "refund_amount_too_large"
    message = gettext_noop("The amount is more than what is left to refund.")


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
    """Refund `amount` of a payment at its provider, once per `request_key` whatever the submissions.

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
    if refund.status == RefundStatus.PENDING and refund.provider_refund_id is None:
        # A repeated submission of a refund whose first call got no answer asks again with the
        # same key: the provider returns the refund it made, or makes it now, never a second one.
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
            existing = refund_for_request_key(request_key=request_key)
            if existing is not None:
                return existing, False
            return refund_insert(
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


def refund_insert(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    comment: str,
    end_access: bool | None,
    created_by: User | None,
    request_key: uuid.UUID | None,
) -> Refund:
    """Write a refund row for a payment locked by the caller, reserving its amount.

    Awaiting approval above REFUND_APPROVAL_THRESHOLD, pending (to be sent) otherwise.
    Raises `PaymentNotRefundable` or `RefundAmountTooLarge` with nothing written.
    """
    if payment.status not in REFUNDABLE_PAYMENT_STATUSES or not payment.provider_payment_id:
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
        # Refunded where it was paid.
        provider=payment.provider,
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
            reason=refund_audit_reason(refund),
            details={
                "payment": str(payment.pk),
                "currency": payment.currency,
                "left_to_refund": [left, left - amount],
                "end_access": end_access,
            },
        )
    return refund
