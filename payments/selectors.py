"""Reads of payments."""

from uuid import UUID

from django.db.models import Prefetch, QuerySet

from accounts.models import BillingAccount
from billing.models import Subscription
from payments.gateways import default_provider
from payments.models import CheckoutSession, CheckoutStatus, Payment, PaymentKind, ProviderCustomer


def payment_list(*, account: BillingAccount) -> QuerySet[Payment]:
    """Return an account's payments, newest first."""
    return Payment.objects.filter(subscription__account=account)


def payment_list_for_subscription(*, subscription: Subscription) -> QuerySet[Payment]:
    """Return one subscription's payments, newest first."""
    return Payment.objects.filter(subscription=subscription)


def payment_get(*, account: BillingAccount, payment_id: UUID) -> Payment | None:
    """Return one of an account's payments, or None if it is not theirs or unknown."""
    return payment_list(account=account).filter(pk=payment_id).first()


def subscription_list(*, account: BillingAccount) -> QuerySet[Subscription]:
    """Return an account's subscriptions, newest first, with any renewal awaiting the viewer."""
    open_renewal_checkouts = CheckoutSession.objects.filter(
        status=CheckoutStatus.OPEN, payment__kind=PaymentKind.RENEWAL
    ).order_by("-created_at")
    return (
        Subscription.objects.filter(account=account)
        .select_related("tariff", "account")
        .prefetch_related(
            Prefetch("checkout_sessions", queryset=open_renewal_checkouts, to_attr="open_renewal_checkouts")
        )
    )


def subscription_get(*, account: BillingAccount, subscription_id: UUID) -> Subscription | None:
    """Return one of an account's subscriptions, or None if it is not theirs or unknown."""
    return subscription_list(account=account).filter(pk=subscription_id).first()


def provider_customer_get(*, account_id: int, provider: str) -> ProviderCustomer | None:
    """Return the account's customer at `provider` (and the card saved there), or None."""
    return ProviderCustomer.objects.filter(account_id=account_id, provider=provider).first()


def subscription_provider(*, subscription: Subscription) -> str:
    """Return the provider a subscription's renewals go through.

    It is the provider of the last checkout the subscription completed (where its card was
    saved), or the default provider for one that never completed a checkout.
    """
    provider = (
        CheckoutSession.objects.filter(subscription=subscription, status=CheckoutStatus.COMPLETE)
        .order_by("-created_at")
        .values_list("provider", flat=True)
        .first()
    )
    return provider or default_provider()
