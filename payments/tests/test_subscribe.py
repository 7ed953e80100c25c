"""Subscribing: one checkout page per choice, whatever the retries, races and provider faults.

These run against the offline Stripe sandbox over HTTP, through the real gateway.
"""

import pytest

from billing.models import IdempotentRequest, Subscription, SubscriptionStatus
from payments.models import CheckoutSession, Payment, PaymentStatus, ProviderCustomer
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/subscriptions/"
SESSIONS = "/v1/checkout/sessions"


@pytest.fixture
def monthly():
    return TariffFactory(slug="monthly", amount=39900, currency="RUB")


@pytest.fixture
def yearly():
    return TariffFactory(slug="yearly", amount=399000, currency="RUB", period_unit="year")


def sessions_created(sandbox) -> list[dict]:
    return [r for r in sandbox.requests(method="POST", path=SESSIONS) if r["status"] == 200]


class TestSubscribe:
    def test_subscribe_opens_a_checkout_at_the_locked_price(self, viewer_client, stripe_sandbox, monthly):
        response = viewer_client("alice", "alice@example.com").post(URL, {"tariff": "monthly"}, format="json")
        assert response.status_code == 201
        body = response.json()
        assert body["subscription"]["status"] == "pending"
        assert (body["payment"]["amount"], body["payment"]["currency"]) == (39900, "RUB")
        assert body["payment"]["status"] == "pending"
        assert body["checkout"]["mode"] == "payment"
        assert body["checkout_url"].startswith(stripe_sandbox.base.removesuffix("/_sandbox"))
        session = stripe_sandbox.objects("checkout.session")[0]
        assert session["amount_total"] == 39900
        assert session["currency"] == "rub"
        assert session["client_reference_id"] == body["checkout"]["id"]
        assert (
            session["payment_intent_data"]["setup_future_usage"] == "off_session"
            if "payment_intent_data" in session
            else True
        )
        created = sessions_created(stripe_sandbox)
        assert [r["idempotency_key"] for r in created] == [f"checkout:{body['checkout']['id']}"]
        customer = ProviderCustomer.objects.get(account__user_id="alice", provider="stripe").customer_ref
        assert customer and session["customer"] == customer

    def test_tariff_can_be_given_by_id(self, viewer_client, stripe_sandbox, monthly):
        response = viewer_client("alice").post(URL, {"tariff": str(monthly.pk)}, format="json")
        assert response.status_code == 201
        assert response.json()["subscription"]["tariff"]["slug"] == "monthly"

    def test_same_choice_again_returns_the_same_open_checkout(self, viewer_client, stripe_sandbox, monthly):
        client = viewer_client("alice")
        first = client.post(URL, {"tariff": "monthly"}, format="json").json()
        again = client.post(URL, {"tariff": "monthly"}, format="json")
        assert again.status_code == 200
        assert again.json()["checkout"]["id"] == first["checkout"]["id"]
        assert again.json()["checkout_url"] == first["checkout_url"]
        assert len(sessions_created(stripe_sandbox)) == 1
        assert Payment.objects.count() == 1

    def test_same_idempotency_key_returns_the_same_answer(self, viewer_client, stripe_sandbox, monthly):
        client = viewer_client("alice")
        first = client.post(URL, {"tariff": "monthly"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        again = client.post(URL, {"tariff": "monthly"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert len(sessions_created(stripe_sandbox)) == 1
        assert IdempotentRequest.objects.count() == 1

    def test_same_key_with_other_parameters_is_refused(self, viewer_client, stripe_sandbox, monthly, yearly):
        client = viewer_client("alice")
        client.post(URL, {"tariff": "monthly"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        response = client.post(URL, {"tariff": "yearly"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert Subscription.objects.count() == 1

    def test_choosing_another_tariff_replaces_the_unpaid_checkout(
        self, viewer_client, stripe_sandbox, monthly, yearly
    ):
        client = viewer_client("alice")
        first = client.post(URL, {"tariff": "monthly"}, format="json").json()
        second = client.post(URL, {"tariff": "yearly"}, format="json")
        assert second.status_code == 201
        old = CheckoutSession.objects.get(pk=first["checkout"]["id"])
        assert old.status == "expired"
        assert old.payment.status == PaymentStatus.CANCELED
        assert old.subscription.status == SubscriptionStatus.CANCELED
        sessions = {s["id"]: s for s in stripe_sandbox.objects("checkout.session")}
        assert sessions[old.provider_session_id]["status"] == "expired"
        live = Subscription.objects.get(account__user_id="alice", status="pending")
        assert live.tariff == yearly

    def test_viewer_with_a_running_subscription_gets_409(self, viewer_client, stripe_sandbox, monthly):
        client = viewer_client("alice")
        checkout = client.post(URL, {"tariff": "monthly"}, format="json").json()
        session_id = CheckoutSession.objects.get(pk=checkout["checkout"]["id"]).provider_session_id
        stripe_sandbox.pay(session_id, "4242424242424242")
        client.get(f"/api/v1/checkouts/{checkout['checkout']['id']}/")  # the success page's re-read
        response = client.post(URL, {"tariff": "monthly"}, format="json")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "subscription_already_exists"


class TestBadInput:
    @pytest.mark.parametrize(
        ("payload", "code"),
        [
            ({"tariff": "no-such-tariff"}, "tariff_unavailable"),
            ({"tariff": "9" * 40}, "tariff_unavailable"),
            ({"tariff": "monthly", "amount": 1}, "validation_error"),
            ({}, "validation_error"),
            ({"tariff": "monthly", "autopay": "sometimes"}, "validation_error"),
            ({"tariff": ["monthly"]}, "validation_error"),
            ({"tariff": "monthly", "promo_code": "FREE"}, "promo_code_invalid"),
        ],
    )
    def test_bad_requests_are_400_and_write_nothing(
        self, viewer_client, stripe_sandbox, monthly, payload, code
    ):
        response = viewer_client("alice").post(URL, payload, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == code
        assert Subscription.objects.count() == 0
        assert stripe_sandbox.requests(method="POST") == []

    def test_inactive_tariff_is_400(self, viewer_client, stripe_sandbox):
        TariffFactory(slug="retired", is_active=False)
        response = viewer_client("alice").post(URL, {"tariff": "retired"}, format="json")
        assert response.json()["error"]["code"] == "tariff_unavailable"

    def test_json_that_is_not_an_object_is_400(self, viewer_client, stripe_sandbox, monthly):
        response = viewer_client("alice").post(URL, "[1, 2]", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"

    def test_malformed_json_is_400(self, viewer_client, stripe_sandbox, monthly):
        response = viewer_client("alice").post(URL, "{not json", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "parse_error"

    def test_overlong_idempotency_key_is_400(self, viewer_client, stripe_sandbox, monthly):
        response = viewer_client("alice").post(
            URL, {"tariff": "monthly"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 300
        )
        assert response.json()["error"]["code"] == "idempotency_key_invalid"


class TestProviderFaults:
    @pytest.mark.parametrize(
        "fault",
        [
            {"mode": "error", "status": 500},
            {"mode": "rate_limit"},
            {"mode": "timeout", "hold_seconds": 3},
            {"mode": "error", "status": 500, "when": "after"},
            {"mode": "timeout", "hold_seconds": 3, "when": "after"},
        ],
        ids=["500", "429", "timeout", "500-after-creating", "timeout-after-creating"],
    )
    def test_provider_failure_is_a_clear_503_and_a_retry_opens_exactly_one_session(
        self, viewer_client, stripe_sandbox, monthly, fault
    ):
        stripe_sandbox.post("/faults", {**fault, "path": SESSIONS, "method": "POST", "count": 1})
        client = viewer_client("alice")
        failed = client.post(URL, {"tariff": "monthly"}, format="json")
        assert failed.status_code == 503
        assert failed.json()["error"]["code"] == "payment_provider_unavailable"
        retried = client.post(URL, {"tariff": "monthly"}, format="json")
        assert retried.status_code in (200, 201)
        sessions = stripe_sandbox.objects("checkout.session")
        assert len(sessions) == 1
        assert retried.json()["checkout_url"] == sessions[0]["url"]
        assert CheckoutSession.objects.count() == 1
        # Both attempts reached the sandbox with the same key. (Requests a previous test's
        # held connection logs late carry other keys, so count only this checkout's.)
        key = f"checkout:{retried.json()['checkout']['id']}"
        attempts = [
            r for r in stripe_sandbox.requests(method="POST", path=SESSIONS) if r["idempotency_key"] == key
        ]
        assert len(attempts) == 2
