"""A billing account's customer at each provider, and the payment method saved there.

One `ProviderCustomer` row per account and provider: the customer is created at the provider
once, whoever asks first, and the card a checkout saved is the one renewals at that provider
charge.
"""

from django.db import transaction

from accounts.models import BillingAccount
from billing.locks import account_lock
from billing.models import Subscription
from core import clock
from payments.gateways import get_gateway
from payments.gateways.base import CardInfo, CustomerRequest, OffSessionCharge
from payments.models import Payment, ProviderCustomer


def customer_idempotency_key(*, account: BillingAccount, provider: str) -> str:
    """Return the key of the call that creates the account's customer at `provider`."""
    return f"customer:{provider}:{account.user_id}"


def customer_for(*, account: BillingAccount, provider: str) -> ProviderCustomer:
    """Return the account's customer at `provider`, creating it there once.

    The idempotency key derives from the cinema user id and the provider, so concurrent first
    checkouts reach one customer at the provider; the unique (account, provider) row makes
    them store one row, and the id is written only where none is stored yet.
    """
    stored = ProviderCustomer.objects.filter(account=account, provider=provider).first()
    if stored is not None and stored.customer_ref:
        return stored
    customer_ref = get_gateway(provider).create_customer(
        CustomerRequest(
            account_ref=account.user_id,
            email=account.email,
            idempotency_key=customer_idempotency_key(account=account, provider=provider),
        )
    )
    customer, _ = ProviderCustomer.objects.get_or_create(
        account=account, provider=provider, defaults={"customer_ref": customer_ref}
    )
    if not customer.customer_ref:
        ProviderCustomer.objects.filter(pk=customer.pk, customer_ref="").update(
            customer_ref=customer_ref, updated_at=clock.now()
        )
        customer.refresh_from_db()
    return customer


@transaction.atomic
def payment_method_save(*, account: BillingAccount, provider: str, card: CardInfo) -> ProviderCustomer:
    """Make a card the one renewals at `provider` charge, keeping only what the provider lets us show.

    The account is locked first (the lock order starts there), then its row at the provider
    is written, so two checkouts of one viewer settling at once save their cards one after
    the other.
    """
    account_lock(account.pk)
    customer, _ = ProviderCustomer.objects.update_or_create(
        account=account,
        provider=provider,
        defaults={
            "payment_method_ref": card.payment_method_id,
            "card_brand": card.brand,
            "card_last4": card.last4,
            "card_exp_month": card.exp_month,
            "card_exp_year": card.exp_year,
        },
    )
    return customer


def off_session_charge(
    *,
    saved: ProviderCustomer,
    payment: Payment,
    subscription: Subscription,
    description: str,
    idempotency_key: str,
) -> OffSessionCharge:
    """Return the request that charges one of our payments to the card saved at its provider.

    No viewer is present. The metadata names our payment, subscription and kind, by which the
    provider's charge is found again (its events, the unbooked-charges sweep); a provider that
    registers a fiscal receipt with the charge (YooKassa) sends it to the account's email.
    """
    return OffSessionCharge(
        customer_id=saved.customer_ref,
        payment_method_id=saved.payment_method_ref,
        amount=payment.amount,
        currency=payment.currency,
        description=description,
        metadata={
            "payment_id": str(payment.pk),
            "subscription_id": str(subscription.pk),
            "kind": payment.kind,
        },
        idempotency_key=idempotency_key,
        receipt_email=subscription.account.email,
    )
