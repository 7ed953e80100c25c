"""Writes to billing accounts."""

from django.db import transaction

from accounts.models import BillingAccount


@transaction.atomic
def account_get_or_create(*, user_id: str, email: str = "", language: str = "en") -> BillingAccount:
    """Return the billing account of a cinema user, creating it on first sight.

    A newer email from the auth service replaces the stored one. Two first requests at
    once are safe: the unique user id makes one of them read the other's row.
    """
    account, created = BillingAccount.objects.get_or_create(
        user_id=user_id, defaults={"email": email, "language": language}
    )
    if not created and email and account.email != email:
        account.email = email
        account.save(update_fields=["email", "updated_at"])
    return account
