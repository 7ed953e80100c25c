"""Reads of payments."""

from typing import Any
from uuid import UUID

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from accounts.models import BillingAccount
from billing.models import Subscription, SubscriptionStatus
from core import clock
from payments.models import (
    CheckoutMode,
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


def _open_first_payment_checkouts() -> QuerySet[CheckoutSession]:
    # A pending subscription's pages pay its first payment (or save the card of its trial);
    # a card update is for a subscription that has started. Newest first.
    return CheckoutSession.objects.filter(
        status=CheckoutStatus.OPEN,
        mode__in=(CheckoutMode.PAYMENT, CheckoutMode.SETUP),
        subscription__status=SubscriptionStatus.PENDING,
    ).order_by("-created_at", "-id")


def first_payment_checkout(*, subscription: Subscription) -> CheckoutSession | None:
    """Return the open page a pending subscription's first payment is made on, or None.

    The newest open page with a URL and time left on the billing clock; None when there is
    none (never opened, expired, given up), when subscribing again opens a fresh one. Reads
    the `open_first_payment_checkouts` that `subscription_list` prefetches, or the database
    for a subscription read otherwise (one query, pending subscriptions only).
    """
    if subscription.status != SubscriptionStatus.PENDING:
        return None
    candidates = getattr(subscription, "open_first_payment_checkouts", None)
    if candidates is None:
        candidates = list(_open_first_payment_checkouts().filter(subscription=subscription))
    now = clock.now()
    return next((c for c in candidates if c.url and c.expires_at > now), None)


def subscription_list(*, account: BillingAccount) -> QuerySet[Subscription]:
    """Return an account's subscriptions, newest first, with what their output shows in a fixed number of queries.

    That is any renewal awaiting the viewer, a pending one's open page, and the promo
    redemption its next charge is priced with (`billing.next_charge`), with the tariffs its code
    is limited to (whether a scheduled downgrade keeps the discount).
    """
    return (
        Subscription.objects.filter(account=account)
        .select_related("tariff", "account", "scheduled_tariff", "promo_redemption__promo")
        .annotate(completed_checkout_provider=Subquery(_completed_checkout_providers(OuterRef("pk"))[:1]))
        .prefetch_related(
            "promo_redemption__promo__tariffs",
            # The renewal a past-due viewer may confirm themselves (`payment_action_url`, our
            # durable link; the provider's open page is no longer what the viewer is given).
            Prefetch("payments", queryset=_failed_renewals(), to_attr="failed_renewal_payments"),
            # The page a pending subscription's first payment waits on (its `payment_action_url`).
            Prefetch(
                "checkout_sessions",
                queryset=_open_first_payment_checkouts(),
                to_attr="open_first_payment_checkouts",
            ),
        )
    )


def subscription_get(*, account: BillingAccount, subscription_id: UUID) -> Subscription | None:
    """Return one of an account's subscriptions, or None if it is not theirs or unknown."""
    return subscription_list(account=account).filter(pk=subscription_id).first()


def provider_customer_get(*, account_id: int, provider: str) -> ProviderCustomer | None:
    """Return the account's customer at `provider` (and the card saved there), or None."""
    return ProviderCustomer.objects.filter(account_id=account_id, provider=provider).first()


_NOT_READ = object()


def _completed_checkout_providers(subscription_id: Any) -> QuerySet[CheckoutSession, str]:
    return (
        CheckoutSession.objects.filter(subscription_id=subscription_id, status=CheckoutStatus.COMPLETE)
        .order_by("-created_at")
        .values_list("provider", flat=True)
    )


def subscription_provider(*, subscription: Subscription) -> str:
    """Return the provider a subscription's renewals go through.

    It is the provider of the last checkout the subscription completed (where its card was
    saved), or its tariff's provider for one that never completed a checkout.
    """
    # `subscription_list` reads it with the subscriptions (an annotation), saving a query each.
    provider = getattr(subscription, "completed_checkout_provider", _NOT_READ)
    if provider is _NOT_READ:
        provider = _completed_checkout_providers(subscription.pk).first()
    return str(provider or subscription.tariff.payment_provider)
