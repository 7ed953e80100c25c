"""A billing account's customer and saved card move to one row per provider.

Every account with anything saved in its Stripe columns (customer id, payment method, card)
gets a `stripe` row holding exactly those values; accounts with nothing saved get no row.
accounts 0012 then drops the columns. Reversed, the `stripe` rows are copied back into the
columns (restored by reversing accounts 0012 first); it refuses to run while another
provider's rows exist, which the old columns could not hold.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.migrations.exceptions import IrreversibleError
from django.db.models import Q

import core.fields

BATCH = 2000
STRIPE = "stripe"


def _something_saved() -> Q:
    return (
        (Q(stripe_customer_id__isnull=False) & ~Q(stripe_customer_id=""))
        | ~Q(default_payment_method_id="")
        | ~Q(card_brand="")
        | ~Q(card_last4="")
        | Q(card_exp_month__isnull=False)
        | Q(card_exp_year__isnull=False)
    )


def copy_to_provider_rows(apps, schema_editor):
    BillingAccount = apps.get_model("accounts", "BillingAccount")
    ProviderCustomer = apps.get_model("payments", "ProviderCustomer")
    accounts = (
        BillingAccount.objects.filter(_something_saved())
        .order_by("pk")
        .values_list(
            "pk",
            "stripe_customer_id",
            "default_payment_method_id",
            "card_brand",
            "card_last4",
            "card_exp_month",
            "card_exp_year",
        )
    )
    rows = []
    for account_id, customer, method, brand, last4, exp_month, exp_year in accounts.iterator(
        chunk_size=BATCH
    ):
        rows.append(
            ProviderCustomer(
                account_id=account_id,
                provider=STRIPE,
                customer_ref=customer or "",
                payment_method_ref=method,
                card_brand=brand,
                card_last4=last4,
                card_exp_month=exp_month,
                card_exp_year=exp_year,
            )
        )
        if len(rows) == BATCH:
            ProviderCustomer.objects.bulk_create(rows)
            rows = []
    ProviderCustomer.objects.bulk_create(rows)


def copy_back_to_account_columns(apps, schema_editor):
    BillingAccount = apps.get_model("accounts", "BillingAccount")
    ProviderCustomer = apps.get_model("payments", "ProviderCustomer")
    others = sorted(set(ProviderCustomer.objects.exclude(provider=STRIPE).values_list("provider", flat=True)))
    if others:
        raise IrreversibleError(
            f"accounts have customers at {', '.join(others)}: the old Stripe columns cannot hold them"
        )
    columns = [
        "stripe_customer_id",
        "default_payment_method_id",
        "card_brand",
        "card_last4",
        "card_exp_month",
        "card_exp_year",
    ]
    accounts = []
    for customer in ProviderCustomer.objects.order_by("pk").iterator(chunk_size=BATCH):
        accounts.append(
            BillingAccount(
                pk=customer.account_id,
                stripe_customer_id=customer.customer_ref or None,
                default_payment_method_id=customer.payment_method_ref,
                card_brand=customer.card_brand,
                card_last4=customer.card_last4,
                card_exp_month=customer.card_exp_month,
                card_exp_year=customer.card_exp_year,
            )
        )
        if len(accounts) == BATCH:
            BillingAccount.objects.bulk_update(accounts, columns)
            accounts = []
    BillingAccount.objects.bulk_update(accounts, columns)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0012_webhook_events_per_provider"),
        ("accounts", "0011_roles_cancel_subscription"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProviderCustomer",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "provider",
                    models.CharField(
                        choices=[("stripe", "Stripe")], editable=False, max_length=16, verbose_name="provider"
                    ),
                ),
                (
                    "customer_ref",
                    models.CharField(blank=True, max_length=255, verbose_name="customer id at the provider"),
                ),
                (
                    "payment_method_ref",
                    models.CharField(
                        blank=True, max_length=255, verbose_name="saved payment method (id at the provider)"
                    ),
                ),
                ("card_brand", models.CharField(blank=True, max_length=32, verbose_name="card brand")),
                ("card_last4", models.CharField(blank=True, max_length=4, verbose_name="card last 4")),
                (
                    "card_exp_month",
                    models.PositiveSmallIntegerField(blank=True, null=True, verbose_name="card expiry month"),
                ),
                (
                    "card_exp_year",
                    models.PositiveSmallIntegerField(blank=True, null=True, verbose_name="card expiry year"),
                ),
                ("created_at", core.fields.CreatedAtField(verbose_name="created")),
                ("updated_at", core.fields.UpdatedAtField(verbose_name="updated")),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="provider_customers",
                        to="accounts.billingaccount",
                        verbose_name="billing account",
                    ),
                ),
            ],
            options={
                "verbose_name": "customer at a provider",
                "verbose_name_plural": "customers at providers",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("account", "provider"), name="provider_customer_account_unique"
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("customer_ref", ""), _negated=True),
                        fields=("customer_ref", "provider"),
                        name="provider_customer_ref_unique",
                    ),
                ],
            },
        ),
        migrations.RunPython(copy_to_provider_rows, copy_back_to_account_columns),
    ]
