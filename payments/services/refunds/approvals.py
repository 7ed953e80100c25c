"""A second staff member approves or rejects a refund above REFUND_APPROVAL_THRESHOLD.

The approver must hold `payments.approve_refund` and must not be the one who asked for the
refund. The payment is locked before the refund (the service's order), so that two staff
members deciding at once wait for each other; an approved refund is sent after the commit
(`provider_answers.refund_send`), a rejected one releases its amount and sends nothing.
"""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext_noop
from rest_framework import status

from core.audit import AuditAction, audit_entry_create
from core.errors import DomainError
from payments.models import Payment, Refund, RefundStatus
from payments.services.refunds.provider_answers import refund_send
from payments.services.refunds.rules import refund_audit_reason


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


def _check_decision(refund: Refund, staff: User) -> None:
    """Refuse a decision on a locked refund that is not awaiting one, or by the wrong staff member."""
    if refund.status != RefundStatus.AWAITING_APPROVAL:
        raise RefundNotAwaitingApproval(details={"refund": str(refund.pk), "status": refund.status})
    if refund.created_by_id == staff.pk or not staff.has_perm("payments.approve_refund"):
        raise RefundApprovalNotAllowed(details={"refund": str(refund.pk)})


def refund_approve(*, refund: Refund, approver: User) -> Refund:
    """Approve a refund above the threshold and send it to the provider.

    The approver must hold `payments.approve_refund` and must not be the one who asked for it.
    """
    with transaction.atomic():
        Payment.objects.select_for_update().get(pk=refund.payment_id)
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        _check_decision(locked, approver)
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
            reason=refund_audit_reason(locked),
            details={"payment": str(locked.payment_id), "amount": locked.amount, "currency": locked.currency},
        )
    return refund_send(refund=locked, actor=approver)


@transaction.atomic
def refund_reject(*, refund: Refund, rejected_by: User, note: str = "") -> Refund:
    """Refuse a refund awaiting approval: nothing is sent, its amount is released."""
    Payment.objects.select_for_update().get(pk=refund.payment_id)
    locked = Refund.objects.select_for_update().get(pk=refund.pk)
    _check_decision(locked, rejected_by)
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
