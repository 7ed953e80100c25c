"""Reads of payments."""

from uuid import UUID

from django.db.models import QuerySet

from accounts.models import BillingAccount
from billing.models import Subscription
from payments.models import Payment


def payment_list(*, account: BillingAccount) -> QuerySet[Payment]:
    """Return an account's payments, newest first."""
    return Payment.objects.filter(subscription__account=account)


def payment_list_for_subscription(*, subscription: Subscription) -> QuerySet[Payment]:
    """Return one subscription's payments, newest first."""
    return Payment.objects.filter(subscription=subscription)


def payment_get(*, account: BillingAccount, payment_id: UUID) -> Payment | None:
    """Return one of an account's payments, or None if it is not theirs or unknown."""
    return payment_list(account=account).filter(pk=payment_id).first()
