"""Checkout: open a Stripe Checkout page for a pending subscription, and apply its outcome.

The flow is written so that no retry, race or lost answer can open two pages or charge twice:
1. `checkout_prepare` writes the payment and checkout rows (in the caller's transaction);
2. `checkout_open` calls Stripe under the checkout row's lock with the checkout id as the
   idempotency key, so a retry after a timeout gets the same page back from Stripe;
3. `checkout_sync` re-reads the session from Stripe and applies it; it is the only path from
   a checkout to an active subscription, used by webhooks and by the success page alike.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.services import account_ensure_stripe_customer, account_save_card
from billing import clock
from billing.locks import subscription_lock
from billing.models import Subscription, SubscriptionStatus
from billing.pricing import amount_for_period
from billing.selectors import account_had_trial
from billing.services import subscription_cancel_now, subscription_renew, subscription_start
from notifications import notify
from payments.gateways import get_gateway
from payments.gateways.base import (
    CardInfo,
    CheckoutRequest,
    GatewayError,
    PaymentIntentInfo,
)
from payments.gateways.base import CheckoutSession as ProviderCheckout
from payments.models import CheckoutMode, CheckoutSession, CheckoutStatus, Payment, PaymentKind, PaymentStatus

logger = logging.getLogger(__name__)

# A checkout is offered again only while the viewer still has time to pay it.
REUSE_MARGIN = timedelta(minutes=5)


def checkout_idempotency_key(checkout: CheckoutSession) -> str:
    """Return the key of the Stripe call that opens this checkout's page."""
    return f"checkout:{checkout.pk}"


def checkout_is_reusable(checkout: CheckoutSession, *, now: datetime) -> bool:
    """Return whether an open checkout can still be handed to the viewer."""
    return checkout.status == CheckoutStatus.OPEN and checkout.expires_at > now + REUSE_MARGIN


def checkout_prepare(*, subscription: Subscription, trial: bool) -> CheckoutSession:
    """Write the rows of a new checkout for a pending subscription (no call to Stripe).

    A trial saves the card without a charge (setup mode), and so does a first period that a
    promo code makes free (Stripe Checkout takes no zero payment); otherwise the first
    period's payment is created at its price (`billing.pricing.amount_for_period`).
    """
    now = timezone.now()
    expires_at = now + settings.CHECKOUT_SESSION_TTL
    amount = amount_for_period(subscription=subscription, period_start=None)
    if trial or amount == 0:
        return CheckoutSession.objects.create(
            subscription=subscription, mode=CheckoutMode.SETUP, expires_at=expires_at
        )
    payment_id = uuid.uuid4()
    payment = Payment.objects.create(
        id=payment_id,
        subscription=subscription,
        kind=PaymentKind.INITIAL,
        amount=amount,
        currency=subscription.currency,
        idempotency_key=f"payment:{payment_id}",
    )
    return CheckoutSession.objects.create(
        subscription=subscription, payment=payment, mode=CheckoutMode.PAYMENT, expires_at=expires_at
    )


def checkout_prepare_for_payment(*, payment: Payment) -> CheckoutSession:
    """Write a checkout that pays exactly this (renewal) payment, on the viewer's side.

    Used when the bank wants the card holder present: the card entered on that page becomes
    the saved one.
    """
    return CheckoutSession.objects.create(
        subscription_id=payment.subscription_id,
        payment=payment,
        mode=CheckoutMode.PAYMENT,
        expires_at=timezone.now() + settings.CHECKOUT_SESSION_TTL,
    )


def _return_url(base: str, checkout: CheckoutSession) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}checkout={checkout.pk}&session_id={{CHECKOUT_SESSION_ID}}"


def _checkout_request(checkout: CheckoutSession, customer_id: str) -> CheckoutRequest:
    subscription = checkout.subscription
    metadata = {"checkout_id": str(checkout.pk), "subscription_id": str(subscription.pk)}
    if checkout.payment_id:
        metadata["payment_id"] = str(checkout.payment_id)
    return CheckoutRequest(
        mode="setup" if checkout.mode == CheckoutMode.SETUP else "payment",
        customer_id=customer_id,
        amount=checkout.payment.amount if checkout.payment is not None else None,
        currency=subscription.currency,
        product_name=subscription.tariff.name,
        client_reference_id=str(checkout.pk),
        metadata=metadata,
        # Renewals charge the saved card off-session, so it is saved whenever autopay is on.
        save_payment_method=subscription.autopay,
        success_url=_return_url(settings.CHECKOUT_SUCCESS_URL, checkout),
        cancel_url=_return_url(settings.CHECKOUT_CANCEL_URL, checkout),
        expires_at=checkout.expires_at,
        locale=subscription.account.language,
        idempotency_key=checkout_idempotency_key(checkout),
    )


def checkout_open(*, checkout_id: UUID) -> CheckoutSession:
    """Open the Stripe page of a prepared checkout, once, and return the checkout.

    Concurrent callers wait on the row lock and then find the page already opened. A
    provider failure leaves the row without a page, and the next call retries with the
    same idempotency key, so Stripe never opens a second page for one checkout.
    """
    with transaction.atomic():
        checkout = (
            CheckoutSession.objects.select_for_update(of=("self",))
            .select_related("subscription__account", "subscription__tariff", "payment")
            .get(pk=checkout_id)
        )
        if checkout.stripe_session_id:
            return checkout
        customer_id = account_ensure_stripe_customer(account=checkout.subscription.account)
        session = get_gateway().create_checkout_session(_checkout_request(checkout, customer_id))
        checkout.stripe_session_id = session.id
        checkout.url = session.url or ""
        checkout.save(update_fields=["stripe_session_id", "url", "updated_at"])
        if checkout.payment_id:
            Payment.objects.filter(pk=checkout.payment_id).update(stripe_checkout_session_id=session.id)
    return checkout


@dataclass(frozen=True)
class _ProviderView:
    """What Stripe says of a checkout, read before any lock is taken."""

    session: ProviderCheckout
    payment_intent: PaymentIntentInfo | None
    saved_card: CardInfo | None


def _read_provider(stripe_session_id: str) -> _ProviderView:
    gateway = get_gateway()
    session = gateway.retrieve_checkout_session(stripe_session_id)
    intent = gateway.retrieve_payment_intent(session.payment_intent_id) if session.payment_intent_id else None
    card = intent.card if intent else None
    if session.setup_intent_id and session.status == "complete":
        setup = gateway.retrieve_setup_intent(session.setup_intent_id)
        if setup.payment_method_id:
            card = gateway.retrieve_payment_method(setup.payment_method_id)
    return _ProviderView(session=session, payment_intent=intent, saved_card=card)


def checkout_sync(*, stripe_session_id: str) -> CheckoutSession | None:
    """Re-read a checkout from Stripe and apply what it says; safe to run any number of times.

    Returns None for a session this service did not open.
    """
    if not CheckoutSession.objects.filter(stripe_session_id=stripe_session_id).exists():
        return None
    view = _read_provider(stripe_session_id)
    with transaction.atomic():
        checkout = (
            CheckoutSession.objects.select_for_update(of=("self",))
            .select_related("subscription__account", "subscription__tariff")
            .get(stripe_session_id=stripe_session_id)
        )
        payment = (
            Payment.objects.select_for_update().get(pk=checkout.payment_id) if checkout.payment_id else None
        )
        if view.session.status == "complete" and view.session.payment_status in (
            "paid",
            "no_payment_required",
        ):
            _apply_completed(checkout, payment, view)
        elif view.session.status == "expired":
            _apply_expired(checkout, payment)
        elif payment is not None and view.payment_intent is not None:
            _record_failed_attempt(payment, view.payment_intent)
    return checkout


def _apply_completed(checkout: CheckoutSession, payment: Payment | None, view: _ProviderView) -> None:
    now = clock.now()
    if checkout.status != CheckoutStatus.COMPLETE:
        checkout.status = CheckoutStatus.COMPLETE
        checkout.save(update_fields=["status", "updated_at"])
    newly_paid = payment is not None and payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED)
    if payment is not None and newly_paid:
        payment_mark_succeeded(payment=payment, intent=view.payment_intent, card=view.saved_card, now=now)
    subscription = subscription_lock(checkout.subscription_id)
    if view.saved_card is not None and subscription.autopay:
        card = view.saved_card
        account_save_card(
            account=subscription.account,
            payment_method_id=card.payment_method_id,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )
    if payment is not None and payment.kind == PaymentKind.RENEWAL:
        if payment.period_start is not None and payment.period_end is not None:
            subscription_renew(
                subscription=subscription, period_start=payment.period_start, period_end=payment.period_end
            )
    elif subscription.status == SubscriptionStatus.PENDING:
        # A setup checkout is a trial, or a first period a promo code made free: the latter
        # starts without a trial when the account already had its one.
        trial = checkout.mode == CheckoutMode.SETUP and not account_had_trial(
            account_id=subscription.account_id, excluding=subscription.pk
        )
        trial_days = subscription.tariff.trial_days if trial else 0
        started = subscription_start(subscription=subscription, started_at=now, trial_days=trial_days)
        if payment is not None:
            payment.period_start, payment.period_end = (
                started.current_period_start,
                started.current_period_end,
            )
            payment.save(update_fields=["period_start", "period_end", "updated_at"])
    elif newly_paid:
        # Paid for a subscription that is no longer pending (replaced meanwhile): the money is
        # recorded as received, and support must refund or honour it.
        logger.error(
            "payment %s succeeded for subscription %s in status %s",
            payment,
            subscription.pk,
            subscription.status,
        )
    if payment is not None and newly_paid:
        notify.payment_succeeded(payment=payment)


def payment_mark_succeeded(
    *, payment: Payment, intent: PaymentIntentInfo | None, card: CardInfo | None, now: datetime
) -> None:
    """Record a locked payment as paid, with Stripe's ids and the card it reports (no number)."""
    payment.status = PaymentStatus.SUCCEEDED
    payment.paid_at = now
    payment.failure_code = payment.failure_message = ""
    if intent is not None:
        payment.stripe_payment_intent_id = intent.id
        payment.stripe_charge_id = intent.latest_charge_id
    if card is not None:
        payment.card_brand, payment.card_last4 = card.brand, card.last4
    payment.save()


def _apply_expired(checkout: CheckoutSession, payment: Payment | None) -> None:
    if checkout.status == CheckoutStatus.OPEN:
        checkout.status = CheckoutStatus.EXPIRED
        checkout.save(update_fields=["status", "updated_at"])
    if payment is not None and payment.status == PaymentStatus.PENDING:
        payment.status = PaymentStatus.CANCELED
        payment.save(update_fields=["status", "updated_at"])
    subscription = subscription_lock(checkout.subscription_id)
    still_payable = subscription.checkout_sessions.filter(status=CheckoutStatus.OPEN).exists()
    if subscription.status == SubscriptionStatus.PENDING and not still_payable:
        subscription_cancel_now(subscription=subscription, at=clock.now())


def _record_failed_attempt(payment: Payment, intent: PaymentIntentInfo) -> None:
    """Keep the last decline on a still-open checkout's payment, so the viewer can be told."""
    if payment.status != PaymentStatus.PENDING or not intent.failure_code:
        return
    payment.failure_code = intent.decline_code or intent.failure_code
    payment.failure_message = intent.failure_message or ""
    payment.stripe_payment_intent_id = intent.id
    payment.save(update_fields=["failure_code", "failure_message", "stripe_payment_intent_id", "updated_at"])


def checkout_abandon(*, checkout: CheckoutSession) -> bool:
    """Close an open checkout the viewer replaced; return False if it turned out to be paid.

    Stripe's page is expired first, so it cannot be paid after we stop honouring it. If Stripe
    says it is already complete, the payment is applied instead.
    """
    if checkout.stripe_session_id:
        try:
            get_gateway().expire_checkout_session(
                checkout.stripe_session_id, idempotency_key=f"expire:{checkout.pk}"
            )
        except GatewayError:
            # Expiring a session that is no longer open fails: find out what it became.
            synced = checkout_sync(stripe_session_id=checkout.stripe_session_id)
            if synced is not None and synced.status == CheckoutStatus.COMPLETE:
                return False
            if synced is not None and synced.status == CheckoutStatus.EXPIRED:
                return True
            raise
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().get(pk=checkout.pk)
        if locked.status == CheckoutStatus.OPEN:
            _apply_expired(
                locked,
                Payment.objects.select_for_update().get(pk=locked.payment_id) if locked.payment_id else None,
            )
    return True


# The result page polls every couple of seconds; Stripe is asked at most this often per checkout.
STATUS_RESYNC_SECONDS = 3


def checkout_status(*, checkout_id: UUID) -> CheckoutSession | None:
    """Return a checkout for its result page, re-reading it from Stripe while it is open.

    The re-read is how a paid checkout settles even if its webhook is late or lost; it is
    throttled per checkout, and a provider failure just leaves the stored state.
    """
    checkout = CheckoutSession.objects.filter(pk=checkout_id).first()
    if checkout is None:
        return None
    due = cache.add(f"checkout-resync:{checkout.pk}", 1, timeout=STATUS_RESYNC_SECONDS)
    if checkout.status == CheckoutStatus.OPEN and checkout.stripe_session_id and due:
        try:
            checkout_sync(stripe_session_id=checkout.stripe_session_id)
        except GatewayError:
            logger.warning("could not re-read checkout %s from Stripe", checkout.pk, exc_info=True)
    return CheckoutSession.objects.select_related("payment", "subscription").get(pk=checkout_id)
