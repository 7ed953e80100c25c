"""The provider's customer of a billing account: created once, whoever asks first."""

from accounts.models import BillingAccount
from payments.gateways import get_gateway
from payments.gateways.base import CustomerRequest


def account_ensure_stripe_customer(*, account: BillingAccount) -> str:
    """Return the account's Stripe customer id, creating the customer once.

    The idempotency key derives from the cinema user id, so concurrent first checkouts
    reach one customer; the id is stored only where none is stored yet.
    """
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer_id = get_gateway().create_customer(
        CustomerRequest(
            account_ref=account.user_id,
            email=account.email,
            idempotency_key=f"customer:{account.user_id}",
        )
    )
    BillingAccount.objects.filter(pk=account.pk, stripe_customer_id__isnull=True).update(
        stripe_customer_id=customer_id
    )
    account.refresh_from_db(fields=["stripe_customer_id"])
    return account.stripe_customer_id or customer_id
