"""Viewers read their own subscriptions and payments, and nobody else's."""

import uuid

import pytest

from accounts.tests.factories import BillingAccountFactory
from billing.tests.factories import SubscriptionFactory
from payments.tests.factories import PaymentFactory
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_subscription():
    return SubscriptionFactory(account=BillingAccountFactory(user_id="alice"))


@pytest.fixture
def bob_subscription():
    return SubscriptionFactory(account=BillingAccountFactory(user_id="bob"))


def assert_not_found(response) -> None:
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


class TestSubscriptions:
    def test_list_shows_only_the_callers_subscriptions(
        self, viewer_client, alice_subscription, bob_subscription
    ):
        body = viewer_client("alice").get("/api/v1/subscriptions/").json()
        assert body["count"] == 1
        assert [s["id"] for s in body["results"]] == [str(alice_subscription.pk)]
        assert body["results"][0]["amount"] == alice_subscription.amount
        assert body["results"][0]["tariff"]["slug"] == alice_subscription.tariff.slug

    def test_detail_of_own_subscription(self, viewer_client, alice_subscription):
        response = viewer_client("alice").get(f"/api/v1/subscriptions/{alice_subscription.pk}/")
        assert response.status_code == 200
        assert response.json()["status"] == "active"

    def test_another_viewers_subscription_is_404(self, viewer_client, bob_subscription):
        assert_not_found(viewer_client("alice").get(f"/api/v1/subscriptions/{bob_subscription.pk}/"))

    def test_another_viewers_subscription_payments_are_404(self, viewer_client, bob_subscription):
        PaymentFactory(subscription=bob_subscription)
        assert_not_found(viewer_client("alice").get(f"/api/v1/subscriptions/{bob_subscription.pk}/payments/"))

    def test_unknown_and_malformed_ids_are_404_in_the_error_shape(self, viewer_client):
        client = viewer_client("alice")
        assert_not_found(client.get(f"/api/v1/subscriptions/{uuid.uuid4()}/"))
        assert_not_found(client.get("/api/v1/subscriptions/not-a-uuid/"))
        assert_not_found(client.get("/api/v1/no-such-endpoint/"))

    def test_list_is_paginated(self, viewer_client):
        account = BillingAccountFactory(user_id="collector")
        for _ in range(3):
            SubscriptionFactory(account=account, status="expired")
        body = viewer_client("collector").get("/api/v1/subscriptions/?page_size=2").json()
        assert (body["count"], len(body["results"])) == (3, 2)
        assert body["next"].endswith("page=2&page_size=2")

    def test_subscription_payments_lists_that_subscriptions_payments(self, viewer_client, alice_subscription):
        payment = PaymentFactory(subscription=alice_subscription)
        other = SubscriptionFactory(account=alice_subscription.account, status="expired")
        PaymentFactory(subscription=other)
        body = viewer_client("alice").get(f"/api/v1/subscriptions/{alice_subscription.pk}/payments/").json()
        assert [p["id"] for p in body["results"]] == [str(payment.pk)]


class TestPayments:
    def test_list_and_detail_of_own_payments(self, viewer_client, alice_subscription, bob_subscription):
        mine = PaymentFactory(subscription=alice_subscription, amount=39900, refunded_amount=10000)
        PaymentFactory(subscription=bob_subscription)
        client = viewer_client("alice")
        listed = client.get("/api/v1/payments/").json()
        assert [p["id"] for p in listed["results"]] == [str(mine.pk)]
        detail = client.get(f"/api/v1/payments/{mine.pk}/").json()
        assert (detail["amount"], detail["refunded_amount"], detail["currency"]) == (39900, 10000, "RUB")
        assert detail["subscription"] == str(alice_subscription.pk)

    def test_payments_never_expose_stripe_or_idempotency_internals(self, viewer_client, alice_subscription):
        payment = PaymentFactory(subscription=alice_subscription, provider_payment_id="pi_123")
        detail = viewer_client("alice").get(f"/api/v1/payments/{payment.pk}/").json()
        assert "idempotency_key" not in detail
        assert "pi_123" not in str(detail)

    def test_another_viewers_payment_is_404(self, viewer_client, bob_subscription):
        payment = PaymentFactory(subscription=bob_subscription)
        assert_not_found(viewer_client("alice").get(f"/api/v1/payments/{payment.pk}/"))


class TestTariffs:
    def test_public_list_has_active_tariffs_in_display_order(self, api_client):
        TariffFactory(slug="yearly", display_order=20, period_unit="year", trial_days=7)
        TariffFactory(slug="monthly", display_order=10)
        TariffFactory(slug="retired", is_active=False)
        body = api_client.get("/api/v1/tariffs/").json()
        assert [t["slug"] for t in body["results"]] == ["monthly", "yearly"]
        yearly = body["results"][1]
        assert yearly["period"] == {"unit": "year", "count": 1}
        assert yearly["trial_days"] == 7
        assert set(yearly) == {
            "id",
            "slug",
            "name",
            "description",
            "amount",
            "currency",
            "period",
            "trial_days",
            "provider",  # who takes the payments (issue 12)
        }

    def test_tariffs_ignore_a_bad_token(self, api_client):
        TariffFactory()
        response = api_client.get("/api/v1/tariffs/", HTTP_AUTHORIZATION="Bearer garbage")
        assert response.status_code == 200


class TestErrors:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/subscriptions/?page=abc",
            "/api/v1/subscriptions/?page=-1",
            "/api/v1/subscriptions/?page=99999",
            "/api/v1/payments/?page_size=100000000000000000000",
            "/api/v1/payments/?page=0",
            "/api/v1/tariffs/?page=%00",
            "/api/v1/internal/access/%F0%9F%8E%AC/",
            "/api/v1/subscriptions/" + "a" * 5000 + "/",
        ],
    )
    def test_odd_input_never_answers_500(self, viewer_client, service_client, path):
        client = service_client if "internal" in path else viewer_client("alice")
        response = client.get(path)
        assert response.status_code < 500
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}

    def test_write_to_a_read_endpoint_is_405_in_the_error_shape(self, viewer_client):
        response = viewer_client("alice").delete("/api/v1/payments/")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"

    def test_schema_and_docs_are_served(self, api_client):
        schema = api_client.get("/api/schema/?format=json")
        assert schema.status_code == 200
        paths = schema.json()["paths"]
        for path in ["/api/v1/access/", "/api/v1/tariffs/", "/api/v1/payments/{payment_id}/"]:
            assert path in paths
        assert api_client.get("/api/docs/").status_code == 200
