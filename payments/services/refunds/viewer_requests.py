"""Viewers ask for a refund of one of their payments; support approves or rejects the request.

A request is open until decided, one open request per payment. Approving it refunds what is
left of the payment (access per the default rule, `rules.refund_access_default`) through the
same path as a staff refund; rejecting it tells the viewer why, by email in their language:
the rejection records the fact `refund_request_rejected` in its transaction, and
notifications turns it into a notice.

Locks: the account before the payment when a request is opened (the request's row refers to
the account); a decision locks the payment, then the request, so that an approval and a
rejection of one request at once wait for each other instead of deadlocking. A rejection
locks the subscription first (`payment_lock_for_refund`): the viewer's notice is written
to it.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop
from rest_framework import status

from accounts.models import BillingAccount
from billing.locks import account_lock
from core import clock
from core.audit import AuditAction, audit_entry_create
from core.errors import DomainError, NotFound
from payments import facts
from payments.models import Payment, Refund, RefundReason, RefundRequest, RefundRequestStatus, RefundStatus
from payments.services.refunds.provider_answers import payment_lock_for_refund, refund_send
from payments.services.refunds.rules import (
    REFUNDABLE_PAYMENT_STATUSES,
    PaymentNotRefundable,
    refund_left_amount,
)
from payments.services.refunds.staff import refund_insert


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

    Locks the payment, then the request (the service's order; a rejection takes the same
    locks after the subscription's).
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund_request.payment_id)
        locked = RefundRequest.objects.select_for_update().get(pk=refund_request.pk)
        _check_open(locked)
        refund = refund_insert(
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
    """Refuse a viewer's request; the viewer is emailed `note` (the fact `refund_request_rejected`).

    Locks the subscription (the viewer's notice is written to it), then the payment and the
    request, as an approval does, so that an approval and a rejection of one request at once
    wait for each other instead of deadlocking.
    """
    with transaction.atomic():
        payment = payment_lock_for_refund(payment_id=refund_request.payment_id)
        locked = RefundRequest.objects.select_for_update().get(pk=refund_request.pk)
        _check_open(locked)
        locked.payment = payment
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
        facts.refund_request_rejected.record(refund_request=locked)
    return locked


def _check_open(refund_request: RefundRequest) -> None:
    """Refuse a decision on a locked request that has already been decided."""
    if refund_request.status != RefundRequestStatus.OPEN:
        raise RefundRequestNotOpen(details={"status": refund_request.status})
