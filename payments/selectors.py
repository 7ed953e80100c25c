"""Reads of payments."""

from uuid import UUID

from django.db.models import Prefetch, QuerySet

from accounts.models import BillingAccount
from billing.models import Subscription, SubscriptionStatus
from payments.gateways import default_provider
from payments.models import (
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ProviderCustomer,
    Refund,
)


def _with_refunds(payments: QuerySet[Payment]) -> QuerySet[Payment]:
    # Every payment shows its refunds: one query for the whole page, not one per payment.
    return payments.prefetch_related(
        Prefetch("refunds", queryset=Refund.objects.order_by("-created_at", "-id"))
    )


def payment_list(*, account: BillingAccount) -> QuerySet[Payment]:
    """Return an account's payments, newest first, each with its refunds."""
    return _with_refunds(Payment.objects.filter(subscription__account=account))


def payment_list_for_subscription(*, subscription: Subscription) -> QuerySet[Payment]:
    """Return one subscription's payments, newest first, each with its refunds."""
    return _with_refunds(Payment.objects.filter(subscription=subscription))


def payment_get(*, account: BillingAccount, payment_id: UUID) -> Payment | None:
    """Return one of an account's payments, or None if it is not theirs or unknown."""
    return payment_list(account=account).filter(pk=payment_id).first()


# The failure code a renewal records when the bank wants the card holder (payments/services/renewals.py).
AUTHENTICATION_REQUIRED = "authentication_required"


def _failed_renewals() -> QuerySet[Payment]:
    return Payment.objects.filter(
        kind=PaymentKind.RENEWAL, status=PaymentStatus.FAILED, failure_code=AUTHENTICATION_REQUIRED
    )


def renewal_awaits_viewer(*, subscription: Subscription, payment: Payment) -> bool:
    """Return whether the viewer may pay a renewal themselves, on a provider's page.

    That is a renewal the bank refused to take off-session (`authentication_required`: it
    wants the card holder present) of a past-due subscription that still waits for exactly
    that period, with no automatic retry scheduled. Only then: a retry (dunning, or a new card
    retried at once) could charge the saved card while the viewer pays the page, and a page
    paid after the period was already paid would be a second charge. Other declines are put
    right by updating the card. Read under the subscription's and payment's locks this is a
    decision (`action_link_follow`); unlocked, a hint (the subscription's `payment_action_url`).
    """
    return (
        payment.kind == PaymentKind.RENEWAL
        and payment.status == PaymentStatus.FAILED
        and payment.failure_code == AUTHENTICATION_REQUIRED
        and payment.subscription_id == subscription.pk
        and subscription.status == SubscriptionStatus.PAST_DUE
        and subscription.next_renewal_attempt_at is None
        and payment.period_start is not None
        and subscription.current_period_end == payment.period_start
    )


def renewal_payment_awaiting_viewer(*, subscription: Subscription) -> Payment | None:
    """Return the renewal of a past-due subscription that its viewer may confirm on a page, or None.

    Reads the `failed_renewal_payments` that `subscription_list` prefetches, or the database
    for a subscription read otherwise (one query, past-due subscriptions only).
    """
    if subscription.status != SubscriptionStatus.PAST_DUE:
        return None
    candidates = getattr(subscription, "failed_renewal_payments", None)
    if candidates is None:
        candidates = list(_failed_renewals().filter(subscription=subscription))
    return next((p for p in candidates if renewal_awaits_viewer(subscription=subscription, payment=p)), None)


def subscription_list(*, account: BillingAccount) -> QuerySet[Subscription]:
    """Return an account's subscriptions, newest first, with any renewal awaiting the viewer."""
    return (
        Subscription.objects.filter(account=account)
        .select_related("tariff", "account", "scheduled_tariff")
        .prefetch_related(
            # The renewal a past-due viewer may confirm themselves (`payment_action_url`, our
            # durable link; the provider's open page is no longer what the viewer is given).
            Prefetch("payments", queryset=_failed_renewals(), to_attr="failed_renewal_payments"),
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
