"""Settling a checkout: re-read it from the provider and apply what happened.

`checkout_sync` is the only path from a checkout to an active subscription, used by webhooks,
the result page and reconciliation alike. A charge the provider accepted is always booked:
it starts what it paid for or, with no home left, is refunded (payments/services/unhomed.py).
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from billing.locks import subscription_lock, subscription_lock_with_account
from billing.models import Subscription, SubscriptionStatus
from billing.pricing import amount_for_period
from billing.selectors import account_had_trial, card_had_trial
from billing.services import subscription_cancel_now, subscription_renew, subscription_start
from core import clock
from core.log_context import log_context, log_context_add
from payments import facts
from payments.gateways import get_gateway
from payments.gateways.base import (
    CardInfo,
    ProviderPayment,
)
from payments.gateways.base import CheckoutSession as ProviderCheckout
from payments.models import (
    PAID_STATUSES,
    CheckoutMode,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
)
from payments.services.card_update import card_update_apply
from payments.services.checkout.card_checks import card_check_held, card_check_release
from payments.services.customers import payment_method_save
from payments.services.plan_change_settle import plan_change_payment_settle
from payments.services.unhomed import payment_refund_unhomed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ProviderView:
    """What the provider says of a checkout, read before any lock is taken."""

    session: ProviderCheckout
    payment_intent: ProviderPayment | None
    saved_card: CardInfo | None
    # A card check's hold still open at the provider (YooKassa), released once the page is applied.
    open_hold: str | None = None


def _read_provider(provider: str, provider_session_id: str) -> _ProviderView:
    gateway = get_gateway(provider)
    session = gateway.retrieve_checkout_session(provider_session_id)
    intent = gateway.retrieve_payment(session.payment_intent_id) if session.payment_intent_id else None
    card = intent.card if intent else None
    if session.setup_intent_id and session.status == "complete":
        setup = gateway.retrieve_payment_method_setup(session.setup_intent_id)
        if setup.payment_method_id:
            card = gateway.retrieve_payment_method(setup.payment_method_id)
    hold = card_check_held(provider=provider, session=session)
    return _ProviderView(session=session, payment_intent=intent, saved_card=card, open_hold=hold)


@log_context()  # its log lines name the subscription the page pays for
def checkout_sync(*, provider_session_id: str, provider: str | None = None) -> CheckoutSession | None:
    """Re-read a checkout from its provider and apply what it says; safe to run any number of times.

    `provider_session_id` is the page's id at `provider` (page ids are unique per provider;
    callers that know the provider, as webhooks and stored rows do, pass it). The provider is
    read before any lock is taken; the rows are then locked in the service's order (account,
    subscription, checkout, payment). Returns None for a page this service did not open.
    """
    pages = CheckoutSession.objects.filter(provider_session_id=provider_session_id)
    if provider is not None:
        pages = pages.filter(provider=provider)
    found = pages.values_list("pk", "subscription_id", "provider").first()
    if found is None:
        return None
    checkout_id, subscription_id, provider = found
    log_context_add(subscription_id=subscription_id)
    view = _read_provider(provider, provider_session_id)
    with transaction.atomic():
        subscription = subscription_lock_with_account(subscription_id)
        checkout = (
            CheckoutSession.objects.select_for_update(of=("self",))
            .select_related("subscription__account", "subscription__tariff")
            .get(pk=checkout_id)
        )
        payment = (
            Payment.objects.select_for_update().get(pk=checkout.payment_id) if checkout.payment_id else None
        )
        log_context_add(payment_id=checkout.payment_id)
        if view.session.status == "complete" and view.session.payment_status in (
            "paid",
            "no_payment_required",
        ):
            _apply_completed(checkout, payment, subscription, view)
        elif view.session.status == "expired":
            if payment is not None and view.payment_intent is not None:
                # A provider that ends the page with its declined payment (YooKassa): the
                # viewer is still told why.
                _record_failed_attempt(payment, view.payment_intent)
            _apply_expired(checkout, payment, subscription)
        elif payment is not None and view.payment_intent is not None:
            _record_failed_attempt(payment, view.payment_intent)
    if view.open_hold is not None:
        # The card is saved (or the page given up): the 1.00 hold has done its work.
        card_check_release(checkout_id=checkout.pk, provider=provider, hold_id=view.open_hold)
    return checkout


def _apply_completed(
    checkout: CheckoutSession, payment: Payment | None, subscription: Subscription, view: _ProviderView
) -> None:
    """Apply a paid (or card-saving) checkout to its locked rows.

    Whatever our side believed of it (a replaced page, a canceled payment, a subscription
    that ended meanwhile), money the provider took is booked: it pays for what it was for
    when that is still possible, and is otherwise refunded in full (`payment_refund_unhomed`).
    """
    if checkout.mode == CheckoutMode.CARD_UPDATE:
        # A viewer replacing the card of a running subscription: nothing starts or is paid.
        card_update_apply(checkout=checkout, subscription=subscription, card=view.saved_card)
        return
    now = clock.now()
    if checkout.status != CheckoutStatus.COMPLETE:
        checkout.status = CheckoutStatus.COMPLETE
        checkout.save(update_fields=["status", "updated_at"])
    newly_paid = payment is not None and payment.status not in PAID_STATUSES
    if payment is not None and newly_paid:
        payment_mark_succeeded(payment=payment, intent=view.payment_intent, card=view.saved_card, now=now)
    if payment is not None and payment.kind == PaymentKind.RENEWAL:
        homed = renewal_payment_has_home(subscription, payment)
        if homed:
            _save_card(checkout, subscription, view.saved_card)
            subscription_renew(
                subscription=subscription,
                period_start=payment.period_start,  # type: ignore[arg-type]
                period_end=payment.period_end,  # type: ignore[arg-type]
            )
    elif payment is not None and payment.kind == PaymentKind.CHANGE:
        # An upgrade whose bank asked the viewer to confirm it on this page: it applies now.
        homed = plan_change_payment_settle(subscription=subscription, payment=payment)
        if homed:
            _save_card(checkout, subscription, view.saved_card)
    elif subscription.status == SubscriptionStatus.PENDING:
        homed = True
        _save_card(checkout, subscription, view.saved_card)
        _start_subscription(checkout.mode, payment, subscription, now, view.saved_card)
    else:
        # Paid again for a subscription that already started from this checkout (a repeated
        # sync) is no news; anything else is a page we replaced or gave up on.
        homed = not newly_paid
    if payment is None or not newly_paid:
        return
    if not homed:
        payment_refund_unhomed(payment=payment, subscription_status=subscription.status)
    else:
        # Read again under the lock this transaction holds: the steps above wrote it through
        # rows of their own, and what the payment did to it is part of the news.
        facts.payment_succeeded.record(payment=payment, subscription=subscription_lock(subscription.pk))


def renewal_payment_has_home(subscription: Subscription, payment: Payment) -> bool:
    """Return whether a paid renewal payment can still move its (locked) subscription into its period.

    True also when the subscription is already in that period (a repeated settlement).
    """
    if payment.period_start is None or payment.period_end is None:
        return False
    if subscription.status not in (
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.PAST_DUE,
        SubscriptionStatus.TRIALING,
    ):
        return False
    already_there = subscription.current_period_start == payment.period_start
    return subscription.current_period_end == payment.period_start or already_there


def _save_card(checkout: CheckoutSession, subscription: Subscription, card: CardInfo | None) -> None:
    """Make the card entered on the page the one renewals at its provider charge, when renewals are on."""
    if card is None or not subscription.autopay:
        return
    payment_method_save(account=subscription.account, provider=checkout.provider, card=card)


def _start_subscription(
    mode: str,
    payment: Payment | None,
    subscription: Subscription,
    now: datetime,
    card: CardInfo | None = None,
) -> None:
    """Start a subscription its checkout paid for, or its trial.

    A setup checkout (no charge) is a trial, or a first period a promo code made free. A
    trial is given once per account and once per card (the provider's fingerprint): a card
    that already had one, on any account, starts a trial that ends at once, so the renewal
    job charges the first period to it.
    """
    fingerprint = card.fingerprint if card is not None else ""
    saved_without_charge = mode == CheckoutMode.SETUP
    trial_days = subscription.tariff.trial_days if saved_without_charge else 0
    if trial_days and account_had_trial(account_id=subscription.account_id, excluding=subscription.pk):
        trial_days = 0
    if trial_days and card_had_trial(fingerprint=fingerprint, excluding=subscription.pk):
        logger.info(
            "subscription %s: card already had a trial, the first period is charged now", subscription.pk
        )
        trial_days = 0
    first_period_free = amount_for_period(subscription=subscription, period_start=None) == 0
    started = subscription_start(
        subscription=subscription,
        started_at=now,
        trial_days=trial_days,
        card_saved_without_charge=saved_without_charge and not first_period_free,
        card_fingerprint=fingerprint,
    )
    if payment is not None:
        payment.period_start, payment.period_end = started.current_period_start, started.current_period_end
        payment.save(update_fields=["period_start", "period_end", "updated_at"])


def payment_settle_from_intent(*, payment: Payment, intent: ProviderPayment) -> None:
    """Book a first payment its provider reports as paid, found without its page (a charge sweep).

    Used only when no page id was ever stored for the payment's checkout (the answer that
    opened it was lost): the subscription starts if it still waits for this payment,
    otherwise the money goes back in full.
    """
    if intent.status != "succeeded":
        return
    with transaction.atomic():
        subscription = subscription_lock_with_account(payment.subscription_id)
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status in PAID_STATUSES:
            return
        payment_mark_succeeded(payment=locked, intent=intent, card=intent.card, now=clock.now())
        CheckoutSession.objects.filter(payment=locked, status=CheckoutStatus.OPEN).update(
            status=CheckoutStatus.COMPLETE
        )
        if subscription.status == SubscriptionStatus.PENDING:
            _start_subscription(CheckoutMode.PAYMENT, locked, subscription, clock.now())
            facts.payment_succeeded.record(payment=locked, subscription=subscription_lock(subscription.pk))
        else:
            payment_refund_unhomed(payment=locked, subscription_status=subscription.status)


def payment_mark_succeeded(
    *, payment: Payment, intent: ProviderPayment | None, card: CardInfo | None, now: datetime
) -> None:
    """Record a locked payment as paid, with the provider's ids and the card it reports (no number)."""
    payment.status = PaymentStatus.SUCCEEDED
    payment.paid_at = now
    payment.failure_code = payment.failure_message = ""
    if intent is not None:
        payment.provider_payment_id = intent.id
        payment.provider_charge_id = intent.latest_charge_id
        payment.receipt_registration = intent.receipt_registration
    if card is not None:
        payment.card_brand, payment.card_last4 = card.brand, card.last4
    payment.save()
    facts.payment_captured.record(payment=payment)


def _apply_expired(checkout: CheckoutSession, payment: Payment | None, subscription: Subscription) -> None:
    """Close a checkout whose page can no longer be paid (rows locked by the caller)."""
    was_open = checkout.status == CheckoutStatus.OPEN
    if was_open:
        checkout.status = CheckoutStatus.EXPIRED
        checkout.save(update_fields=["status", "updated_at"])
    # Only the page's own first payment, paid nowhere else, dies with the page, and only when the
    # page closes now. A renewal's or a plan change's payment is also charged off-session: its
    # page's expiry (or a late re-read of it) says nothing of that charge, whose answer may be
    # lost; canceling it would make the next attempt charge again with a new key.
    if (
        was_open
        and payment is not None
        and payment.kind == PaymentKind.INITIAL
        and payment.status == PaymentStatus.PENDING
    ):
        payment.status = PaymentStatus.CANCELED
        payment.save(update_fields=["status", "updated_at"])
    still_payable = subscription.checkout_sessions.filter(status=CheckoutStatus.OPEN).exists()
    if subscription.status == SubscriptionStatus.PENDING and not still_payable:
        subscription_cancel_now(subscription=subscription, at=clock.now())


def _record_failed_attempt(payment: Payment, intent: ProviderPayment) -> None:
    """Keep the last decline on a still-open checkout's payment, so the viewer can be told."""
    if payment.status != PaymentStatus.PENDING or not intent.failure_code:
        return
    payment.failure_code = intent.decline_code or intent.failure_code
    payment.failure_message = intent.failure_message or ""
    payment.provider_payment_id = intent.id
    payment.save(update_fields=["failure_code", "failure_message", "provider_payment_id", "updated_at"])
