"""Reads of a viewer's own refunds and refund requests (the API's `/refunds/` and `/refund-requests/`).

Only the viewer's own rows, newest first. What a viewer may see of them is decided by the
output serializers (`payments/serializers.py`): staff-only columns are never read out.
"""

from django.db.models import QuerySet

from accounts.models import BillingAccount
from payments.models import Refund, RefundRequest


def refund_list(*, account: BillingAccount) -> QuerySet[Refund]:
    """Return the refunds of an account's payments, newest first (ties by id, so pages are stable)."""
    return Refund.objects.filter(payment__subscription__account=account).order_by("-created_at", "-id")


def refund_request_list(*, account: BillingAccount) -> QuerySet[RefundRequest]:
    """Return an account's refund requests, newest first, with the payment and refund each refers to."""
    return (
        RefundRequest.objects.filter(account=account)
        .select_related("payment", "refund")
        .order_by("-created_at", "-id")
    )
