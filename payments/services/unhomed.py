"""Charges without a home: money a provider took for something we can no longer give.

A viewer may pay a page we had already replaced, or a renewal page after the subscription
ended; a charge may surface that our rows had given up on. Whatever our side believed, such a
charge is booked: the payment is recorded as paid (the caller does that), and when it cannot
pay for what it was for, it is refunded in full here, automatically. The refund is written in
the transaction that booked the payment, sent to the provider after commit with the key
`refund:<refund id>` (re-sent by the pending-payments reconciliation until the provider answers),
audited as the system's doing, and the viewer gets the usual refund email once it succeeds.
"""

import logging

from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from core.audit import AuditAction, audit_entry_create
from payments.models import Payment, Refund, RefundReason, RefundStatus

logger = logging.getLogger(__name__)

UNHOMED_COMMENT = "Automatic: paid for a checkout or renewal that could no longer be honoured."


def payment_refund_unhomed(*, payment: Payment, subscription_status: str) -> Refund:
    """Refund in full a paid payment that cannot pay for its subscription any more.

    The caller holds the payment's row lock and has just recorded it as paid. Idempotent: a
    payment that already has its automatic refund gets that one back.
    """
    existing = payment.refunds.filter(comment=UNHOMED_COMMENT, created_by__isnull=True).first()
    if existing is not None:
        return existing
    refund = Refund.objects.create(
        payment=payment,
        provider=payment.provider,  # refunded where it was paid
        amount=payment.amount - payment.refunded_amount,
        currency=payment.currency,
        status=RefundStatus.PENDING,
        reason=RefundReason.DUPLICATE,
        comment=UNHOMED_COMMENT,
        end_access=False,
    )
    logger.warning(
        "payment %s was paid for subscription %s in status %s: refunded automatically (refund %s)",
        payment.pk,
        payment.subscription_id,
        subscription_status,
        refund.pk,
    )
    audit_entry_create(
        actor=AnonymousUser(),
        action=AuditAction.REFUND_AUTOMATIC,
        target=refund,
        changes={"status": (None, refund.status), "amount": (None, refund.amount)},
        reason=UNHOMED_COMMENT,
        details={
            "payment": str(payment.pk),
            "subscription": str(payment.subscription_id),
            "subscription_status": subscription_status,
            "currency": payment.currency,
        },
    )
    refund_pk = refund.pk
    transaction.on_commit(lambda: _send_later(refund_pk))
    return refund


def _send_later(refund_pk: object) -> None:
    """Queue the refund's call to the provider; if the broker is down, reconciliation sends it."""
    from payments.tasks import send_refund

    try:
        send_refund.delay(str(refund_pk))
    except Exception:
        logger.warning("could not queue refund %s: reconciliation will send it", refund_pk, exc_info=True)
