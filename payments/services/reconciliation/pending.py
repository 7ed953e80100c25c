"""The pending-payments job: settle from the provider's word what lost webhooks left pending.

`reconcile_pending_payments` re-reads from one provider its checkouts and renewal charges still
pending after a while, and applies what the provider says through the same services the
webhooks and the success page use (`checkout_sync`, `renewal_apply_intent`); it also sends the
refunds that were written but never reached the provider. Safe to run twice, or next to the
webhooks: every change goes through those idempotent services.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from django.db.models import Q

from core import clock
from payments.gateways import get_gateway
from payments.models import (
    CheckoutMode,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReceiptRegistration,
    ReconciliationKind,
    ReconciliationRun,
    Refund,
    RefundStatus,
)
from payments.services.checkout import checkout_abandon, checkout_sync
from payments.services.checkout.card_checks import HOLD_LIFETIME, card_check_held, card_check_release
from payments.services.plan_change import plan_change_apply_intent
from payments.services.reconciliation.runs import (
    FIXES_KEPT,
    _execute,
    _lease_keep,
    _note_error,
    _note_fix,
    reconciliation_provider,
)
from payments.services.refunds.provider_answers import refund_send
from payments.services.renewals import renewal_apply_intent

logger = logging.getLogger(__name__)


def reconcile_pending_payments(*, older_than: timedelta, provider: str | None = None) -> ReconciliationRun:
    """Settle, from a provider's word, what has been pending with it longer than `older_than`.

    The provider defaults to the default one; only its rows are examined, and the run is
    recorded as its. Examined: open checkouts (or checkouts of pending payments) opened before
    then, open checkouts whose page has expired whatever their age, and pending renewal
    payments whose payment at the provider is known. A paid checkout activates its
    subscription, an expired one is canceled, a succeeded renewal charge renews the
    subscription. Refunds written before then but never sent (their task was lost, e.g. the
    broker was down) are sent. At a provider that holds funds to save a card (YooKassa), the
    holds of settled card-saving checkouts still open there are released; and payments whose
    fiscal receipt was still being registered get the provider's final word on it.
    """

    def work(run: ReconciliationRun) -> None:
        _settle_pending(run, older_than)
        _send_unsent_refunds(run, older_than=older_than)
        _release_card_checks(run, older_than=older_than)
        _refresh_receipts(run, older_than=older_than)

    return _execute(ReconciliationKind.PENDING_PAYMENTS, reconciliation_provider(provider), work)


@dataclass(frozen=True)
class _Target:
    """One thing to ask the provider about: a checkout, or a renewal payment."""

    what: Literal["checkout", "payment"]
    pk: UUID

    def __str__(self) -> str:
        return f"{self.what} {self.pk}"


def _pending_targets(*, provider: str, now: datetime, cutoff: datetime) -> list[_Target]:
    stale_open = Q(status=CheckoutStatus.OPEN) & (
        Q(created_at__lte=cutoff, provider_session_id__isnull=False) | Q(expires_at__lte=now)
    )
    # A pending payment whose checkout is no longer open on our side still gets its checkout re-read.
    of_pending_payment = Q(
        payment__status=PaymentStatus.PENDING,
        payment__created_at__lte=cutoff,
        provider_session_id__isnull=False,
    )
    checkout_ids = (
        CheckoutSession.objects.filter(stale_open | of_pending_payment, provider=provider)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    intents = (
        Payment.objects.filter(
            provider=provider,
            status=PaymentStatus.PENDING,
            kind__in=(PaymentKind.RENEWAL, PaymentKind.CHANGE),
            provider_payment_id__isnull=False,
            created_at__lte=cutoff,
        )
        # Renewals paid on a checkout page are settled through that checkout.
        .exclude(checkout_sessions__provider_session_id__isnull=False)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    return [_Target("checkout", pk) for pk in checkout_ids] + [_Target("payment", pk) for pk in intents]


def _settle_pending(run: ReconciliationRun, older_than: timedelta) -> None:
    now = clock.now()
    for target in _pending_targets(provider=run.provider, now=now, cutoff=now - older_than):
        _lease_keep(run)
        run.examined += 1
        before = _snapshot(target)
        try:
            _settle(target, now=now)
        except Exception as exc:
            # One payment the provider cannot tell us about now must not hold up the others.
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
        if checkout.provider_session_id:
            checkout_sync(provider_session_id=checkout.provider_session_id, provider=checkout.provider)
        elif checkout.expires_at <= now:
            # Its page was never opened (the provider was down), and now it could not be paid anyway.
            checkout_abandon(checkout=checkout)
        return
    payment = Payment.objects.get(pk=target.pk)
    if payment.status == PaymentStatus.PENDING and payment.provider_payment_id:
        intent = get_gateway(payment.provider).retrieve_payment(payment.provider_payment_id)
        if payment.kind == PaymentKind.CHANGE:
            plan_change_apply_intent(payment=payment, intent=intent)
        else:
            renewal_apply_intent(payment=payment, intent=intent)


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


def _send_unsent_refunds(run: ReconciliationRun, *, older_than: timedelta) -> None:
    """Send the run's provider the refunds written but never sent to it (same key: never twice)."""
    cutoff = clock.now() - older_than
    unsent = Refund.objects.filter(
        provider=run.provider,
        status=RefundStatus.PENDING,
        provider_refund_id__isnull=True,
        created_at__lte=cutoff,
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


def _release_card_checks(run: ReconciliationRun, *, older_than: timedelta) -> None:
    """Release the card checks the run's provider still holds for settled checkouts (never captured)."""
    gateway = get_gateway(run.provider)
    if not gateway.card_check_holds_funds:
        return
    now = clock.now()
    settled = CheckoutSession.objects.filter(
        provider=run.provider,
        mode__in=(CheckoutMode.SETUP, CheckoutMode.CARD_UPDATE),
        provider_session_id__isnull=False,
        created_at__lte=now - older_than,
        # Older holds were canceled by the provider itself.
        created_at__gte=now - HOLD_LIFETIME,
    ).exclude(status=CheckoutStatus.OPEN)
    for checkout_id, session_id in settled.order_by("created_at").values_list("pk", "provider_session_id")[
        :FIXES_KEPT
    ]:
        _lease_keep(run)
        run.examined += 1
        try:
            hold = card_check_held(
                provider=run.provider, session=gateway.retrieve_checkout_session(str(session_id))
            )
        except Exception as exc:
            _note_error(run, f"checkout {checkout_id}: {type(exc).__name__}: {exc}")
            continue
        if hold is None:
            continue
        if card_check_release(checkout_id=checkout_id, provider=run.provider, hold_id=hold):
            _note_fix(run, {"checkout": str(checkout_id), "card_check_released": hold})
        else:
            _note_error(run, f"checkout {checkout_id}: the card check {hold} could not be released yet")


def _refresh_receipts(run: ReconciliationRun, *, older_than: timedelta) -> None:
    """Record the provider's final word on receipts that were still being registered (YooKassa, 54-FZ)."""
    cutoff = clock.now() - older_than
    waiting = Payment.objects.filter(
        provider=run.provider,
        receipt_registration=ReceiptRegistration.PENDING,
        provider_payment_id__isnull=False,
        paid_at__lte=cutoff,
    )
    gateway = get_gateway(run.provider)
    for payment_id, provider_payment_id in waiting.order_by("paid_at").values_list(
        "pk", "provider_payment_id"
    )[:FIXES_KEPT]:
        _lease_keep(run)
        run.examined += 1
        try:
            status = gateway.retrieve_payment(str(provider_payment_id)).receipt_registration
        except Exception as exc:
            _note_error(run, f"payment {payment_id}: {type(exc).__name__}: {exc}")
            continue
        if status not in ReceiptRegistration.values:
            continue
        # Only this column: an UPDATE of one payment, no other row's lock is taken or awaited.
        moved = (
            Payment.objects.filter(pk=payment_id, receipt_registration=ReceiptRegistration.PENDING)
            .exclude(receipt_registration=status)
            .update(receipt_registration=status)
        )
        if moved:
            _note_fix(run, {"payment": str(payment_id), "receipt_status": status})
