"""Subscribe: from a viewer's choice of tariff to the provider's checkout page, exactly once.

All subscribes of one account run one after another under a lock on the account row, so
however many requests arrive at once, an account has at most one open checkout: a repeat
gets the open checkout back, a different choice (another tariff, autopay setting or promo
code) replaces it. A promo code's use is counted in the same transaction (see
`tariffs.services`), so a subscribe that fails gives it back.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.models import BillingAccount
from billing.models import Subscription, SubscriptionStatus
from billing.promotions import promo_code_redeem, promo_code_validate, promo_redemption_record
from billing.selectors import account_had_trial
from billing.services import subscription_cancel, subscription_cancel_now, subscription_create
from core import clock
from core.errors import DomainError, LiveSubscriptionExists, TariffUnavailable
from payments.gateways import configured_providers
from payments.gateways.errors import GatewayError
from payments.models import CheckoutSession, CheckoutStatus, Payment, Provider
from payments.services.checkout import checkout_abandon, checkout_is_reusable, checkout_open, checkout_prepare
from tariffs.models import PromoCode, Tariff
from tariffs.selectors import promo_redemption_for_subscription, tariff_currency_fits


class PaymentProviderUnavailable(DomainError):
    code = "payment_provider_unavailable"
    message = "The payment provider is not answering right now. Please retry in a moment."
    status_code = 503


class ReceiptEmailRequired(DomainError):
    code = "receipt_email_required"
    message = (
        "This tariff's payments come with a fiscal receipt sent by email, and your account has no "
        "email address. Sign in with an account that has one."
    )
    status_code = 400


def receipt_email_required(*, provider: str) -> bool:
    """Return whether payments through `provider` need the viewer's email (YooKassa's 54-FZ receipts)."""
    return provider == Provider.YOOKASSA and bool(getattr(settings, "YOOKASSA_RECEIPTS", True))


@dataclass(frozen=True)
class SubscribeResult:
    subscription: Subscription
    payment: Payment | None
    checkout: CheckoutSession
    created: bool


def _open_checkout_of(subscription: Subscription) -> CheckoutSession | None:
    return subscription.checkout_sessions.filter(status=CheckoutStatus.OPEN).order_by("-created_at").first()


def pending_subscription_abandon(*, subscription: Subscription) -> bool:
    """Close the checkouts of a pending subscription and cancel it.

    Returns False if a checkout turned out to be paid meanwhile: the subscription then
    started instead, and stays.
    """
    for checkout in subscription.checkout_sessions.filter(status=CheckoutStatus.OPEN):
        if not checkout_abandon(checkout=checkout):
            return False
    subscription.refresh_from_db()
    if subscription.status == SubscriptionStatus.PENDING:
        subscription_cancel_now(subscription=subscription, at=clock.now())
    return True


def subscription_cancel_by_viewer(*, subscription: Subscription) -> Subscription:
    """Cancel at the viewer's request: an unpaid one at once, a running one at its period end."""
    if subscription.status == SubscriptionStatus.PENDING:
        try:
            pending_subscription_abandon(subscription=subscription)
        except GatewayError as exc:
            raise PaymentProviderUnavailable() from exc
        subscription.refresh_from_db()
        if subscription.status in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE):
            # Paid while being canceled: it is running now, so it ends at its period end.
            return subscription_cancel(subscription=subscription, at=clock.now())
        return subscription
    return subscription_cancel(subscription=subscription, at=clock.now())


def _same_choice(pending: Subscription, *, tariff: Tariff, autopay: bool, promo: PromoCode | None) -> bool:
    redemption = promo_redemption_for_subscription(subscription_id=pending.pk)
    pending_promo_id = redemption.promo_id if redemption is not None else None
    return (
        pending.tariff_id == tariff.pk
        and pending.autopay == autopay
        and pending_promo_id == (promo.pk if promo is not None else None)
    )


def _prepare(
    *, account: BillingAccount, tariff: Tariff, autopay: bool, promo_code: str | None
) -> tuple[CheckoutSession, bool]:
    """Under the account lock, find the checkout to hand out or write a new one."""
    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(pk=account.pk)
        now = clock.now()
        pending = Subscription.objects.filter(account=account, status=SubscriptionStatus.PENDING).first()
        promo = None
        if promo_code is not None:
            # Checked before anything changes, so a code that cannot be used leaves the
            # viewer's open checkout as it was.
            promo = promo_code_validate(
                code=promo_code, account=account, tariff=tariff, at=now, replacing=pending
            )
        if pending is not None:
            checkout = _open_checkout_of(pending)
            same_choice = _same_choice(pending, tariff=tariff, autopay=autopay, promo=promo)
            if same_choice and checkout is not None and checkout_is_reusable(checkout, now=now):
                return checkout, False
        if promo is not None:
            # Counted before the old page is closed at the provider: a code that ran out meanwhile
            # rolls everything back and leaves that page open.
            promo_code_redeem(promo=promo, at=now, replacing=pending)
        if pending is not None and not pending_subscription_abandon(subscription=pending):
            # The old page (another choice, or about to expire) turned out to be paid
            # meanwhile: that subscription started instead.
            raise LiveSubscriptionExists()
        subscription = subscription_create(account=account, tariff=tariff, autopay=autopay)
        if promo is not None:
            promo_redemption_record(promo=promo, subscription=subscription)
        # One free trial per account, ever: a viewer who had one pays at once.
        trial = bool(tariff.trial_days) and not account_had_trial(account_id=account.pk)
        return checkout_prepare(subscription=subscription, trial=trial), True


def subscribe(
    *, account: BillingAccount, tariff: Tariff, autopay: bool = True, promo_code: str | None = None
) -> SubscribeResult:
    """Return the provider's checkout page for the viewer's chosen tariff, less any promo code.

    Raises `LiveSubscriptionExists` when the account already has a running subscription,
    `TariffUnavailable` for an inactive tariff, a `PromoCodeError` (400) for a promo code
    that cannot be used, and `PaymentProviderUnavailable` when the provider cannot be reached; a
    retry then reuses the same checkout and idempotency key. The tariff's provider takes the
    payment: one this deployment does not configure makes the tariff unavailable, and one that
    sends receipts by email (YooKassa) is refused to an account without an email
    (`ReceiptEmailRequired`); both before anything is written.
    """
    provider = tariff.payment_provider
    if provider not in configured_providers() or not tariff_currency_fits(tariff=tariff):
        raise TariffUnavailable(details={"tariff": tariff.slug})
    if receipt_email_required(provider=provider) and not account.email:
        raise ReceiptEmailRequired(details={"provider": provider})
    try:
        checkout, created = _prepare(account=account, tariff=tariff, autopay=autopay, promo_code=promo_code)
        checkout = checkout_open(checkout_id=checkout.pk)
    except GatewayError as exc:
        raise PaymentProviderUnavailable(details={"provider_error": exc.code or type(exc).__name__}) from exc
    checkout = CheckoutSession.objects.select_related("subscription__tariff", "payment").get(pk=checkout.pk)
    return SubscribeResult(
        subscription=checkout.subscription, payment=checkout.payment, checkout=checkout, created=created
    )
