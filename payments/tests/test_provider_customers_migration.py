"""payments 0013 moves each account's Stripe customer and saved card into a provider row, and back.

The migrations run for real on the test database (backwards to before them, then forwards),
so the copy is proved on the columns as they were; the database is migrated to the latest
state again whatever happens.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("accounts", "0011_roles_cancel_subscription"), ("payments", "0012_webhook_events_per_provider")]
COPIED = [("payments", "0013_provider_customers")]
COLUMNS_DROPPED = [("accounts", "0012_customers_at_providers")]
SAVED = (
    "stripe_customer_id",
    "default_payment_method_id",
    "card_brand",
    "card_last4",
    "card_exp_month",
    "card_exp_year",
)


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate the database to `targets` and return the models as they were there."""
    MigrationExecutor(connection).migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def before() -> Iterator[Any]:
    """Return the models from before the move, migrating back to the latest state afterwards."""
    apps = migrate(BEFORE)
    yield apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def accounts_before(apps: Any) -> dict[str, Any]:
    Account = apps.get_model("accounts", "BillingAccount")
    return {
        "full": Account.objects.create(
            user_id="full",
            stripe_customer_id="cus_full",
            default_payment_method_id="pm_full",
            card_brand="visa",
            card_last4="4242",
            card_exp_month=4,
            card_exp_year=2031,
        ),
        "customer_only": Account.objects.create(user_id="customer-only", stripe_customer_id="cus_only"),
        "card_only": Account.objects.create(
            user_id="card-only",
            default_payment_method_id="pm_lone",
            card_brand="mastercard",
            card_last4="4444",
        ),
        "nothing": Account.objects.create(user_id="nothing", email="nothing@example.com"),
    }


def saved_columns(apps: Any) -> dict[str, tuple[Any, ...]]:
    Account = apps.get_model("accounts", "BillingAccount")
    return {row[0]: row[1:] for row in Account.objects.values_list("user_id", *SAVED)}


def test_every_saved_customer_and_card_moves_to_a_stripe_row_and_back(before):
    accounts = accounts_before(before)
    as_they_were = saved_columns(before)

    ProviderCustomer = migrate(COPIED).get_model("payments", "ProviderCustomer")
    rows = {
        row[0]: row[1:]
        for row in ProviderCustomer.objects.values_list(
            "account_id",
            "provider",
            "customer_ref",
            "payment_method_ref",
            "card_brand",
            "card_last4",
            "card_exp_month",
            "card_exp_year",
        )
    }
    assert rows == {
        accounts["full"].pk: ("stripe", "cus_full", "pm_full", "visa", "4242", 4, 2031),
        accounts["customer_only"].pk: ("stripe", "cus_only", "", "", "", None, None),
        accounts["card_only"].pk: ("stripe", "", "pm_lone", "mastercard", "4444", None, None),
    }

    after = migrate(COLUMNS_DROPPED)
    columns = {field.name for field in after.get_model("accounts", "BillingAccount")._meta.get_fields()}
    assert not columns & set(SAVED)
    assert after.get_model("payments", "ProviderCustomer").objects.count() == 3

    assert saved_columns(migrate(BEFORE)) == as_they_were


def test_going_back_refuses_while_another_providers_customers_exist(before):
    account = accounts_before(before)["full"]
    ProviderCustomer = migrate(COPIED).get_model("payments", "ProviderCustomer")
    ProviderCustomer.objects.create(account_id=account.pk, provider="other", customer_ref="cust_1")

    with pytest.raises(IrreversibleError):
        migrate(BEFORE)

    ProviderCustomer.objects.filter(provider="other").delete()
    assert saved_columns(migrate(BEFORE))["full"] == ("cus_full", "pm_full", "visa", "4242", 4, 2031)
