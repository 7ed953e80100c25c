"""Staff roles are groups made by a migration; each opens exactly its part of the admin.

The billing account admin's behaviour for those roles is proved here too.
"""

import importlib
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.urls import reverse

from accounts.models import BillingAccount, Language
from accounts.tests.factories import BillingAccountFactory
from accounts.tests.roles import staff_member
from billing.tests.factories import SubscriptionFactory
from payments.tests.factories import ProviderCustomerFactory
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

roles_migration = importlib.import_module("accounts.migrations.0002_roles")
stripe_event_roles_migration = importlib.import_module("accounts.migrations.0005_roles_stripe_events")
promo_code_roles_migration = importlib.import_module("accounts.migrations.0006_roles_promo_codes")
reconciliation_roles_migration = importlib.import_module("accounts.migrations.0007_roles_reconciliation")
refund_roles_migration = importlib.import_module("accounts.migrations.0009_roles_refunds")
notification_roles_migration = importlib.import_module("accounts.migrations.0008_roles_notifications")
back_office_roles_migration = importlib.import_module("accounts.migrations.0010_roles_back_office")

EXPECTED_PERMISSIONS = {
    "Manager": {
        "tariffs.add_tariff",
        "tariffs.change_tariff",
        "tariffs.delete_tariff",
        "tariffs.view_tariff",
        "tariffs.add_promocode",
        "tariffs.change_promocode",
        "tariffs.delete_promocode",
        "tariffs.view_promocode",
        "tariffs.view_promoredemption",
        "billing.view_subscription",
    },
    "Support": {
        "accounts.view_billingaccount",
        "billing.view_subscription",
        "payments.view_payment",
        "payments.view_refund",
        "payments.add_refund",
        "payments.view_webhookevent",
        "payments.reprocess_webhookevent",
        "payments.view_checkoutsession",
        "payments.view_reconciliationrun",
        "payments.approve_refund",
        "payments.view_refundrequest",
        "payments.change_refundrequest",
        "notifications.view_notice",
        "notifications.resend_notice",
        "notifications.view_outboxevent",
        "notifications.view_eventdelivery",
        "notifications.redeliver_eventdelivery",
        "billing.extend_subscription",
        "billing.cancel_subscription",
        "billing.change_subscription_plan",
        "ledger.view_ledgercheckrun",
    },
    "Accounting": {
        "tariffs.view_tariff",
        "tariffs.view_promocode",
        "tariffs.view_promoredemption",
        "accounts.view_billingaccount",
        "billing.view_subscription",
        "payments.view_payment",
        "payments.view_refund",
        "payments.view_webhookevent",
        "payments.view_checkoutsession",
        "payments.view_reconciliationrun",
        "payments.view_refundrequest",
        "notifications.view_notice",
        "notifications.view_outboxevent",
        "notifications.view_eventdelivery",
        "payments.export_payment",
        "payments.export_refund",
        "payments.view_dashboard",
        "payments.view_reconciliation_report",
        "auditlog.view_logentry",
        "ledger.view_journalentry",
        "ledger.view_ledger_reports",
        "ledger.export_journalentry",
        "ledger.view_ledgeraccount",
        "ledger.view_ledgercheckrun",
    },
}


def permissions_of(role: str) -> set[str]:
    permissions = Group.objects.get(name=role).permissions.select_related("content_type")
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


class TestRolesMigration:
    @pytest.mark.parametrize("role", EXPECTED_PERMISSIONS)
    def test_migrate_gives_each_role_exactly_its_permissions(self, role):
        assert permissions_of(role) == EXPECTED_PERMISSIONS[role]

    def test_members_get_the_roles_permissions(self):
        support = staff_member("Support")

        assert support.has_perm("payments.add_refund")
        assert support.has_perm("payments.approve_refund")
        assert support.has_perm("payments.change_refundrequest")
        assert not support.has_perm("payments.change_payment")
        assert not support.has_perm("tariffs.view_tariff")

    def test_migration_reverses_and_applies_again(self):
        state_apps = MigrationLoader(connection).project_state(("accounts", "0002_roles")).apps
        schema_editor = SimpleNamespace(connection=connection)

        roles_migration.remove_roles(state_apps, schema_editor)
        assert not Group.objects.filter(name__in=EXPECTED_PERMISSIONS).exists()

        roles_migration.create_roles(state_apps, schema_editor)
        later_apps = MigrationLoader(connection).project_state(("accounts", "0005_roles_stripe_events")).apps
        stripe_event_roles_migration.grant(later_apps, schema_editor)
        promo_apps = MigrationLoader(connection).project_state(("accounts", "0006_roles_promo_codes")).apps
        promo_code_roles_migration.grant(promo_apps, schema_editor)
        reconciliation_apps = (
            MigrationLoader(connection).project_state(("accounts", "0007_roles_reconciliation")).apps
        )
        reconciliation_roles_migration.grant(reconciliation_apps, schema_editor)
        notification_apps = (
            MigrationLoader(connection).project_state(("accounts", "0008_roles_notifications")).apps
        )
        notification_roles_migration.grant(notification_apps, schema_editor)
        refund_apps = MigrationLoader(connection).project_state(("accounts", "0009_roles_refunds")).apps
        refund_roles_migration.grant(refund_apps, schema_editor)
        back_office_apps = (
            MigrationLoader(connection).project_state(("accounts", "0010_roles_back_office")).apps
        )
        back_office_roles_migration.grant(back_office_apps, schema_editor)
        cancel_apps = (
            MigrationLoader(connection).project_state(("accounts", "0011_roles_cancel_subscription")).apps
        )
        importlib.import_module("accounts.migrations.0011_roles_cancel_subscription").grant(
            cancel_apps, schema_editor
        )
        ledger_apps = MigrationLoader(connection).project_state(("accounts", "0014_roles_ledger")).apps
        importlib.import_module("accounts.migrations.0014_roles_ledger").grant(ledger_apps, schema_editor)
        plan_apps = MigrationLoader(connection).project_state(("accounts", "0015_roles_change_plan")).apps
        importlib.import_module("accounts.migrations.0015_roles_change_plan").grant(plan_apps, schema_editor)
        assert {role: permissions_of(role) for role in EXPECTED_PERMISSIONS} == EXPECTED_PERMISSIONS

    def test_refund_roles_migration_reverses_and_applies_again(self):
        refund_apps = MigrationLoader(connection).project_state(("accounts", "0009_roles_refunds")).apps
        schema_editor = SimpleNamespace(connection=connection)

        refund_roles_migration.revoke(refund_apps, schema_editor)
        assert not {"payments.approve_refund", "payments.view_refundrequest"} & permissions_of("Support")
        assert "payments.add_refund" in permissions_of("Support")

        refund_roles_migration.grant(refund_apps, schema_editor)
        assert {role: permissions_of(role) for role in EXPECTED_PERMISSIONS} == EXPECTED_PERMISSIONS

    def test_demo_staff_log_in_with_their_roles(self, client):
        TariffFactory()
        call_command("seed_demo", stdout=StringIO())
        opens = {}
        for username in ("manager", "support", "accountant"):
            assert client.login(username=username, password="billing-demo")
            opens[username] = {
                page: client.get(reverse(f"admin:{page}")).status_code
                for page in ("tariffs_tariff_add", "payments_payment_changelist")
            }
            client.logout()

        assert opens == {
            "manager": {"tariffs_tariff_add": 200, "payments_payment_changelist": 403},
            "support": {"tariffs_tariff_add": 403, "payments_payment_changelist": 200},
            "accountant": {"tariffs_tariff_add": 403, "payments_payment_changelist": 200},
        }


class TestBillingAccountAdmin:
    changelist_url = reverse("admin:accounts_billingaccount_changelist")

    @staticmethod
    def change_url(account: BillingAccount) -> str:
        return reverse("admin:accounts_billingaccount_change", args=[account.pk])

    @pytest.fixture
    def superuser_client(self, client):
        client.force_login(User.objects.create_superuser(username="root", email="root@example.com"))
        return client

    def test_accounts_are_never_added_by_hand(self, superuser_client):
        changelist = superuser_client.get(self.changelist_url)

        assert changelist.context["has_add_permission"] is False
        assert superuser_client.get(reverse("admin:accounts_billingaccount_add")).status_code == 403

    def test_only_email_and_language_can_be_changed(self, superuser_client):
        account = BillingAccountFactory(user_id="viewer-1", email="old@example.com")
        ProviderCustomerFactory(account=account, customer_ref="cus_1")

        page = superuser_client.get(self.change_url(account)).content.decode()
        response = superuser_client.post(
            self.change_url(account),
            {
                "user_id": "someone-else",
                "customer_ids": "cus_other",
                "email": "new@example.com",
                "language": Language.RUSSIAN,
                "subscriptions-TOTAL_FORMS": "0",
                "subscriptions-INITIAL_FORMS": "0",
            },
        )

        assert 'name="email"' in page
        assert 'name="language"' in page
        assert 'name="user_id"' not in page
        assert 'name="customer_ids"' not in page
        assert "Stripe: cus_1" in page
        assert response.status_code == 302
        account.refresh_from_db()
        assert account.user_id == "viewer-1"
        assert list(account.provider_customers.values_list("customer_ref", flat=True)) == ["cus_1"]
        assert (account.email, account.language) == ("new@example.com", Language.RUSSIAN)

    def test_account_page_lists_its_subscriptions(self, superuser_client):
        subscription = SubscriptionFactory(tariff=TariffFactory(name="Monthly HD", amount=39900))

        content = superuser_client.get(self.change_url(subscription.account)).content.decode()

        assert "Monthly HD" in content
        assert "399.00 RUB" in content
        assert str(subscription.pk) in content

    def test_support_reads_accounts_but_cannot_change_them(self, client):
        account = BillingAccountFactory(email="old@example.com")
        client.force_login(staff_member("Support"))

        page = client.get(self.change_url(account))
        posted = client.post(self.change_url(account), {"email": "new@example.com", "language": "en"})

        assert page.status_code == 200
        assert 'name="email"' not in page.content.decode()
        assert posted.status_code == 403
        account.refresh_from_db()
        assert account.email == "old@example.com"
