"""Staff read subscriptions in the admin and can never change one by hand."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import BillingAccountFactory
from billing.models import Subscription, SubscriptionStatus
from billing.tests.factories import SubscriptionFactory
from payments.tests.factories import PaymentFactory, ProviderCustomerFactory
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

CHANGELIST_URL = reverse("admin:billing_subscription_changelist")


def change_url(subscription: Subscription) -> str:
    return reverse("admin:billing_subscription_change", args=[subscription.pk])


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser(username="root", email="root@example.com"))
    return client


def listed(response) -> list[Subscription]:
    return list(response.context["cl"].result_list)


class TestReadOnly:
    def test_no_add_even_for_a_superuser(self, superuser_client):
        changelist = superuser_client.get(CHANGELIST_URL)

        assert changelist.context["has_add_permission"] is False
        assert superuser_client.get(reverse("admin:billing_subscription_add")).status_code == 403

    def test_no_delete_even_for_a_superuser(self, superuser_client):
        subscription = SubscriptionFactory()

        changelist = superuser_client.get(CHANGELIST_URL)
        delete_page = superuser_client.get(
            reverse("admin:billing_subscription_delete", args=[subscription.pk])
        )
        bulk_delete = superuser_client.post(
            CHANGELIST_URL, {"action": "delete_selected", "_selected_action": [subscription.pk]}
        )

        assert "delete_selected" not in changelist.context["cl"].model_admin.get_actions(
            changelist.wsgi_request
        )
        assert delete_page.status_code == 403
        assert bulk_delete.status_code in (200, 302)
        assert Subscription.objects.filter(pk=subscription.pk).exists()

    def test_change_page_is_read_only(self, superuser_client):
        subscription = SubscriptionFactory(status=SubscriptionStatus.ACTIVE, amount=39900)

        page = superuser_client.get(change_url(subscription))
        posted = superuser_client.post(change_url(subscription), {"status": SubscriptionStatus.CANCELED})

        content = page.content.decode()
        assert page.status_code == 200
        assert "399.00 RUB" in content
        assert 'name="status"' not in content
        assert 'name="_save"' not in content
        assert posted.status_code == 403
        subscription.refresh_from_db()
        assert subscription.status == SubscriptionStatus.ACTIVE

    def test_change_page_lists_the_subscription_payments(self, superuser_client):
        subscription = SubscriptionFactory(amount=39900)
        payment = PaymentFactory(subscription=subscription, amount=12345)

        content = superuser_client.get(change_url(subscription)).content.decode()

        assert str(payment.pk) in content
        assert "123.45 RUB" in content


class TestChangelist:
    def test_list_shows_account_tariff_and_price_as_money(self, superuser_client):
        SubscriptionFactory(
            account=BillingAccountFactory(user_id="viewer-7", email="seven@example.com"),
            tariff=TariffFactory(name="Monthly HD", amount=39900),
        )

        content = superuser_client.get(CHANGELIST_URL).content.decode()

        for text in ("viewer-7", "seven@example.com", "Monthly HD", "399.00 RUB"):
            assert text in content

    def test_page_costs_the_same_queries_however_many_subscriptions(self, superuser_client):
        SubscriptionFactory.create_batch(2)
        with CaptureQueriesContext(connection) as few:
            superuser_client.get(CHANGELIST_URL)
        SubscriptionFactory.create_batch(8)
        with CaptureQueriesContext(connection) as many:
            superuser_client.get(CHANGELIST_URL)

        assert len(many) == len(few)

    def test_filters_by_status(self, superuser_client):
        active = SubscriptionFactory(status=SubscriptionStatus.ACTIVE)
        SubscriptionFactory(status=SubscriptionStatus.CANCELED)

        response = superuser_client.get(CHANGELIST_URL, {"status__exact": SubscriptionStatus.ACTIVE})

        assert listed(response) == [active]


class TestSearch:
    def test_cinema_user_id_finds_exactly_that_accounts_subscription(self, superuser_client):
        wanted = SubscriptionFactory(account=BillingAccountFactory(user_id="viewer-7"))
        SubscriptionFactory(account=BillingAccountFactory(user_id="viewer-77"))
        SubscriptionFactory(account=BillingAccountFactory(user_id="old-viewer-7"))

        response = superuser_client.get(CHANGELIST_URL, {"q": "viewer-7"})

        assert listed(response) == [wanted]

    def test_email_finds_the_subscription_whatever_its_case(self, superuser_client):
        wanted = SubscriptionFactory(account=BillingAccountFactory(email="Anna@Example.com"))
        SubscriptionFactory(account=BillingAccountFactory(email="hanna@example.com"))

        response = superuser_client.get(CHANGELIST_URL, {"q": " anna@example.com "})

        assert listed(response) == [wanted]

    def test_stripe_customer_id_finds_all_of_the_accounts_subscriptions(self, superuser_client):
        account = ProviderCustomerFactory(customer_ref="cus_123").account
        old = SubscriptionFactory(account=account, status=SubscriptionStatus.EXPIRED)
        current = SubscriptionFactory(account=account)
        SubscriptionFactory()

        response = superuser_client.get(CHANGELIST_URL, {"q": "cus_123"})

        assert set(listed(response)) == {old, current}

    def test_subscription_id_finds_that_subscription(self, superuser_client):
        wanted = SubscriptionFactory()
        SubscriptionFactory()

        response = superuser_client.get(CHANGELIST_URL, {"q": str(wanted.pk).upper()})

        assert listed(response) == [wanted]

    def test_unknown_term_finds_nothing(self, superuser_client):
        SubscriptionFactory(account=BillingAccountFactory(user_id="viewer-7"))

        response = superuser_client.get(CHANGELIST_URL, {"q": "viewer"})

        assert listed(response) == []


class TestRoles:
    def test_manager_reads_subscriptions_but_not_their_payments(self, login_as):
        payment = PaymentFactory(provider_payment_id="pi_hidden_from_managers")
        client = login_as("Manager")

        changelist = client.get(CHANGELIST_URL)
        page = client.get(change_url(payment.subscription))

        assert changelist.status_code == 200
        assert page.status_code == 200
        assert "pi_hidden_from_managers" not in page.content.decode()
        assert str(payment.pk) not in page.content.decode()

    def test_support_reads_subscriptions(self, login_as):
        subscription = SubscriptionFactory()

        assert login_as("Support").get(change_url(subscription)).status_code == 200
