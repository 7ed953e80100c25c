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


@transaction.atomic
def account_save_card(
    *, account: BillingAccount, payment_method_id: str, brand: str, last4: str, exp_month: int, exp_year: int
) -> BillingAccount:
    """Make a card the one renewals charge, keeping only what Stripe lets us show of it."""
    account = BillingAccount.objects.select_for_update().get(pk=account.pk)
    account.default_payment_method_id = payment_method_id
    account.card_brand, account.card_last4 = brand, last4
    account.card_exp_month, account.card_exp_year = exp_month, exp_year
    account.save(
        update_fields=[
            "default_payment_method_id",
            "card_brand",
            "card_last4",
            "card_exp_month",
            "card_exp_year",
            "updated_at",
        ]
    )
    return account
