"""The unbooked-charges job: book the succeeded charges at a provider our rows do not show as paid.

`reconcile_unbooked_charges` reads one provider's charges of a recent window and settles each
one our rows missed through the same services a webhook uses (`charge_settle_unbooked`); the
daily report reads what the runs fixed (`unbooked_charges_fixed`) and lists those as fixes
instead of as mismatches. A charge it can neither book nor refund (`REFUND_NEEDS_EMAIL`) is
no fix: it fails the run for staff to see, and the daily report keeps it as a mismatch.
"""

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from billing.locks import subscription_lock
from billing.models import Subscription
from core import clock
from core.validation import uuid_or_none
from payments.gateways import get_gateway
from payments.gateways.base import ChargeInfo, CreatedRange
from payments.gateways.base import RefundRequest as GatewayRefundRequest
from payments.models import (
    PAID_STATUSES,
    CheckoutSession,
    Payment,
    PaymentKind,
    ReconciliationKind,
    ReconciliationRun,
)
from payments.services.checkout import checkout_sync, payment_settle_from_intent
from payments.services.plan_change import plan_change_apply_intent
from payments.services.reconciliation.runs import (
    _execute,
    _lease_keep,
    _note_error,
    _note_fix,
    reconciliation_provider,
)
from payments.services.refunds.provider_answers import refund_receipt
from payments.services.renewals import renewal_apply_intent, renewal_would_make
from payments.services.subscribe import receipt_email_required
from payments.services.unhomed import UNHOMED_COMMENT

logger = logging.getLogger(__name__)

# The outcome of a charge to refund whose provider needs the viewer's email for the refund's
# receipt (YooKassa's 54-FZ) when no email of theirs is found: nothing is sent, staff decide.
REFUND_NEEDS_EMAIL = "refund_needs_email"


def unbooked_charges_window() -> CreatedRange:
    """Return the last UNBOOKED_CHARGES_LOOKBACK, on the billing clock.

    The provider stamps charges with its own time, which is ours: real time in production, the
    moved billing clock in the demo (the sandbox follows it), so the window is read from
    `core.clock` like every other "now" of the money paths.
    """
    now = clock.now()
    return CreatedRange(start=now - settings.UNBOOKED_CHARGES_LOOKBACK, end=now)


def reconcile_unbooked_charges(
    *, window: CreatedRange | None = None, provider: str | None = None
) -> ReconciliationRun:
    """Book every succeeded charge of the window at a provider that our rows do not show as paid.

    The window defaults to `unbooked_charges_window()`, the provider to the default one. Each
    charge is settled by `charge_settle_unbooked`: it gives the access it paid for, or is
    refunded in full. The run lists what it fixed; the daily report shows those fixes instead
    of "missing with us".
    """
    looked_at = window or unbooked_charges_window()
    return _execute(
        ReconciliationKind.UNBOOKED_CHARGES,
        reconciliation_provider(provider),
        lambda run: _settle_unbooked_charges(run, looked_at),
    )


def unbooked_charges_fixed(
    *, provider: str, charge_ids: list[str], since: datetime
) -> dict[str, dict[str, Any]]:
    """Return, by charge id, what a provider's unbooked-charges runs started since then did about these charges."""
    wanted, found = set(charge_ids), {}
    runs = ReconciliationRun.objects.filter(
        kind=ReconciliationKind.UNBOOKED_CHARGES, provider=provider, fixed__gt=0, started_at__gte=since
    )
    for fixes in runs.values_list("fixes", flat=True).iterator():
        for fix in fixes:
            if isinstance(fix, dict) and fix.get("charge") in wanted:
                found[fix["charge"]] = fix
    return found


def charge_settle_unbooked(charge: ChargeInfo, *, provider: str) -> str | None:
    """Book a succeeded charge at `provider` that our rows do not show as paid; say what was done.

    The charge's payment at the provider (re-read, never trusted from a list) names our payment
    or checkout in its metadata. The payment is then settled by the same services a webhook
    uses, which start or renew the subscription it was for, or refund it in full when that
    is no longer possible. A charge of ours whose rows are gone is refunded at the provider
    (key `unbooked-charge:<charge id>`), unless its renewal is still to book it
    (`_left_to_its_renewal`); so is a second charge for a payment another charge paid
    (`_refund_second_charge`), with a receipt to the account's email where the provider needs
    one; without that email nothing is sent (`REFUND_NEEDS_EMAIL`). Returns None when there was
    nothing to do.
    """
    if charge.status != "succeeded" or not charge.payment_intent_id:
        return None
    payment = Payment.objects.filter(provider=provider, provider_payment_id=charge.payment_intent_id).first()
    if payment is not None and payment.status in PAID_STATUSES:
        return None
    gateway = get_gateway(provider)
    intent = gateway.retrieve_payment(charge.payment_intent_id)
    payment = payment or _payment_named_in(intent.metadata, provider=provider)
    if payment is None:
        return _refund_rowless_charge(charge, intent.metadata, provider=provider)
    if payment.status in PAID_STATUSES:
        return _refund_second_charge(charge, payment, provider=provider)
    checkout = payment.checkout_sessions.exclude(provider_session_id=None).order_by("-created_at").first()
    if checkout is not None and checkout.provider_session_id:
        checkout_sync(provider_session_id=checkout.provider_session_id, provider=checkout.provider)
    elif payment.kind == PaymentKind.RENEWAL:
        renewal_apply_intent(payment=payment, intent=intent)
    elif payment.kind == PaymentKind.CHANGE:
        plan_change_apply_intent(payment=payment, intent=intent)
    else:
        payment_settle_from_intent(payment=payment, intent=intent)
    payment.refresh_from_db()
    refunded = payment.refunds.filter(comment=UNHOMED_COMMENT).exists()
    return "refunded" if refunded else "booked"


def _payment_named_in(metadata: dict[str, str], *, provider: str) -> Payment | None:
    # Only rows of the provider that took the charge: a payment of ours with another provider
    # cannot have been paid by it.
    payment_id, checkout_id = (
        uuid_or_none(metadata.get("payment_id")),
        uuid_or_none(metadata.get("checkout_id")),
    )
    if payment_id is not None:
        found = Payment.objects.filter(pk=payment_id, provider=provider).first()
        if found is not None:
            return found
    if checkout_id is not None:
        checkout = (
            CheckoutSession.objects.filter(pk=checkout_id, provider=provider)
            .select_related("payment")
            .first()
        )
        if checkout is not None:
            return checkout.payment
    return None


def _left_to_its_renewal(metadata: dict[str, str], *, provider: str) -> bool:
    """Return whether a charge naming a renewal payment we do not have is its renewal's to book.

    A renewal charges inside the transaction that writes its payment: until that commits, or
    once a worker killed mid-charge rolled it back, the charge names a row we do not have. The
    subscription's lock (taken as renewals take it, before any payment) waits out a renewal in
    flight; then its payment is there, or the subscription is still due for the period the
    charge paid, and its next renewal sends the same key, which the provider answers with this
    very charge. Refunding it now would leave that renewal booked as paid for money given back.
    """
    subscription_id = uuid_or_none(metadata.get("subscription_id"))
    if metadata.get("kind") != PaymentKind.RENEWAL or subscription_id is None:
        return False
    with transaction.atomic():
        try:
            subscription = subscription_lock(subscription_id)
        except Subscription.DoesNotExist:
            return False
        if _payment_named_in(metadata, provider=provider) is not None:
            return True
        return renewal_would_make(subscription=subscription, payment_id=metadata.get("payment_id", ""))


def _refund_rowless_charge(charge: ChargeInfo, metadata: dict[str, str], *, provider: str) -> str | None:
    """Give back a charge made for our rows that no longer exist; leave anyone else's alone.

    Someone else's charge (no metadata of ours) is nothing this job can put right: it is no fix,
    so the daily report keeps it among its mismatches, where accounting looks into it.
    """
    if not (metadata.get("payment_id") or metadata.get("checkout_id")):
        logger.error("charge %s at %s is not ours (no metadata of ours): left alone", charge.id, provider)
        return None
    if _left_to_its_renewal(metadata, provider=provider):
        logger.info("charge %s at %s is its renewal's to book: left to it", charge.id, provider)
        return None
    if charge.amount <= charge.amount_refunded:
        # Given back already, by an earlier sweep or at the provider: no news. Counting it again
        # would make every run within the lookback report a fix, and none ever come out clean.
        return None
    subscription = _subscription_named_in(metadata)
    if not _refund_at_provider(charge, subscription, provider=provider):
        logger.error(
            "charge %s at %s names rows we do not have, and no email for its refund's receipt "
            "(subscription %s): left alone, neither booked nor refunded",
            charge.id,
            provider,
            metadata.get("subscription_id"),
        )
        return REFUND_NEEDS_EMAIL
    logger.error("charge %s at %s names rows we do not have: refunded there", charge.id, provider)
    return "refunded_without_row"


def _subscription_named_in(metadata: dict[str, str]) -> Subscription | None:
    # Read without a lock: only its account's email and its tariff's name are used, and a
    # subscription's account never changes.
    subscription_id = uuid_or_none(metadata.get("subscription_id"))
    if subscription_id is None:
        return None
    return Subscription.objects.select_related("account", "tariff").filter(pk=subscription_id).first()


def _refund_second_charge(charge: ChargeInfo, payment: Payment, *, provider: str) -> str | None:
    """Give back a charge naming a payment of ours that another charge paid; None if it paid it.

    One payment row is paid once: a second charge for it (an attempt whose answer was lost, then
    a new attempt under the next key that was answered) has no home, whatever it was for, and is
    refunded in full at the provider. Only when the provider confirms the payment the row names
    took the money: a paid row naming no payment there, or one that did not succeed (a refused
    attempt's, never expected once paid), proves nothing, and the charge is left alone and logged.
    So is a charge whose refund needs a receipt to the account's email when the account has none.
    """
    if payment.provider_payment_id == charge.payment_intent_id or charge.amount <= charge.amount_refunded:
        return None  # the charge that paid it, or a second one given back already
    paid_by = payment.provider_payment_id
    if not paid_by or get_gateway(provider).retrieve_payment(paid_by).status != "succeeded":
        logger.error(
            "charge %s at %s names paid payment %s, whose own charge (%s) is not confirmed: left alone",
            charge.id,
            provider,
            payment.pk,
            paid_by,
        )
        return None
    if not _refund_at_provider(charge, payment.subscription, provider=provider):
        logger.error(
            "charge %s at %s names payment %s, paid by %s, and no email for its refund's receipt: "
            "left alone, not refunded",
            charge.id,
            provider,
            payment.pk,
            paid_by,
        )
        return REFUND_NEEDS_EMAIL
    logger.error(
        "charge %s at %s names payment %s, paid by %s: refunded there",
        charge.id,
        provider,
        payment.pk,
        payment.provider_payment_id,
    )
    return "refunded_second_charge"


def _refund_at_provider(charge: ChargeInfo, subscription: Subscription | None, *, provider: str) -> bool:
    """Refund what is left of a charge no row of ours books, keyed by the charge (never twice).

    The refund's fiscal receipt (YooKassa) goes to the email of the subscription's account and
    names its tariff; providers without receipts ignore both. Return False, sending nothing, when
    something is left to refund but the provider needs that email and none is found: it would
    refuse the refund anyway.
    """
    left = charge.amount - charge.amount_refunded
    if left <= 0:
        return True
    receipt = refund_receipt(subscription) if subscription is not None else {}
    if not receipt.get("receipt_email") and receipt_email_required(provider=provider):
        return False
    get_gateway(provider).create_refund(
        GatewayRefundRequest(
            payment_intent_id=charge.payment_intent_id or "",
            amount=left,
            reason="duplicate",
            metadata={"unbooked_charge": charge.id},
            idempotency_key=f"unbooked-charge:{charge.id}",
            **receipt,
        )
    )
    return True


def _settle_unbooked_charges(run: ReconciliationRun, window: CreatedRange) -> None:
    """Book every succeeded charge of the window at the run's provider our rows miss; note each in the run."""
    for charge in get_gateway(run.provider).list_charges(window):
        _lease_keep(run)
        run.examined += 1
        try:
            outcome = charge_settle_unbooked(charge, provider=run.provider)
        except Exception as exc:
            logger.warning("reconciliation could not settle charge %s", charge.id, exc_info=True)
            _note_error(run, f"charge {charge.id}: {type(exc).__name__}: {exc}")
            continue
        if outcome == REFUND_NEEDS_EMAIL:
            # Nothing was put right: an error fails the run for staff to see, and leaves the
            # charge out of the fixes, so the daily report still lists it as missing with us.
            _note_error(
                run,
                f"charge {charge.id}: {REFUND_NEEDS_EMAIL}: {charge.amount} {charge.currency} neither "
                "booked nor refunded; its refund's receipt needs the viewer's email and none is found",
            )
            continue
        if outcome is not None:
            fix = {
                "charge": charge.id,
                "amount": charge.amount,
                "currency": charge.currency,
                "outcome": outcome,
            }
            _note_fix(run, fix)
