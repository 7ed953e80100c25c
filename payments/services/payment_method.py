"""The viewer's payment method: the card renewals charge, and a provider page that replaces it.

- `payment_method_get` reads the card saved at the provider of the viewer's subscription.
- `payment_method_update_start` hands out a provider page that saves a new card without a
  charge (a `CARD_UPDATE` checkout: Stripe Checkout in setup mode). A double click gets the
  same open page back: the checkout row is written under the account's lock and the page is
  opened with the checkout's idempotency key (`checkout_open`).
- Settling such a page (`checkout_sync`, from the webhook or the return page, in either order)
  saves the card once, starts, charges or extends nothing itself, and has a past-due renewal
  retried with the new card: payments/services/card_update.py.
"""

from django.conf import settings
from django.db import transaction

from accounts.models import BillingAccount
from billing.locks import account_lock
from billing.models import Subscription, SubscriptionStatus
from core import clock
from core.errors import DomainError
from payments.gateways.errors import GatewayError
from payments.models import CheckoutMode, CheckoutSession, CheckoutStatus, ProviderCustomer
from payments.selectors import subscription_provider
from payments.services.checkout.pages import checkout_is_reusable, checkout_open
from payments.services.subscribe import (
    PaymentProviderUnavailable,
    ReceiptEmailRequired,
    receipt_email_required,
)

S = SubscriptionStatus

# A subscription that has started: the one whose renewals charge the saved card.
STARTED_STATUSES = (S.TRIALING, S.ACTIVE, S.PAST_DUE)


class NoPaymentMethod(DomainError):
    code = "no_payment_method"
    message = "No card is saved for your subscription."
    status_code = 404


class NoSubscriptionForCard(DomainError):
    code = "no_subscription"
    message = "You have no running subscription to save a card for."
    status_code = 409


def _started_subscription(account_id: int) -> Subscription | None:
    # An account has at most one live subscription (a database rule); of those only a
    # started one has renewals to charge a card to.
    return (
        Subscription.objects.filter(account_id=account_id, status__in=STARTED_STATUSES)
        .select_related("account", "tariff")
        .order_by("-created_at")
        .first()
    )


def payment_method_get(*, account: BillingAccount) -> ProviderCustomer | None:
    """Return the card saved for the account's renewals, or None when none is saved.

    It is the one saved at the provider of the running subscription (where its renewals
    charge); without a running subscription, the card saved last at any provider.
    """
    saved = ProviderCustomer.objects.filter(account=account).exclude(payment_method_ref="")
    subscription = _started_subscription(account.pk)
    if subscription is not None:
        return saved.filter(provider=subscription_provider(subscription=subscription)).first()
    return saved.order_by("-updated_at").first()


def _card_update_checkout(account: BillingAccount) -> CheckoutSession:
    """Under the account's lock, find the open card-update page to hand out again or write a new one."""
    with transaction.atomic():
        account_lock(account.pk)
        subscription = _started_subscription(account.pk)
        if subscription is None:
            raise NoSubscriptionForCard()
        now = clock.now()
        open_page = (
            CheckoutSession.objects.filter(
                subscription=subscription, mode=CheckoutMode.CARD_UPDATE, status=CheckoutStatus.OPEN
            )
            .order_by("-created_at")
            .first()
        )
        if open_page is not None and checkout_is_reusable(open_page, now=now):
            return open_page
        # The card is saved where the renewals charge it: the subscription's provider.
        provider = subscription_provider(subscription=subscription)
        if receipt_email_required(provider=provider) and not account.email:
            # Its card check comes with a fiscal receipt too, which the provider would refuse.
            raise ReceiptEmailRequired(details={"provider": provider})
        return CheckoutSession.objects.create(
            subscription=subscription,
            mode=CheckoutMode.CARD_UPDATE,
            provider=provider,
            expires_at=now + settings.CHECKOUT_SESSION_TTL,
        )


def payment_method_update_start(*, account: BillingAccount) -> CheckoutSession:
    """Return an open provider page where the viewer saves a new card for their renewals, without a charge.

    The same page is handed out again while the viewer can still use it, so a double click
    opens one page. Raises `NoSubscriptionForCard` without a running subscription and
    `PaymentProviderUnavailable` when the provider cannot be reached (a retry then opens the
    same checkout with the same idempotency key).
    """
    checkout = _card_update_checkout(account)
    try:
        return checkout_open(checkout_id=checkout.pk)
    except GatewayError as exc:
        raise PaymentProviderUnavailable(details={"provider_error": exc.code or type(exc).__name__}) from exc
