"""A checkout settles only from what Stripe says: a verified event or a server-side re-read."""

import json

import pytest

from billing.models import SubscriptionStatus
from payments.gateways import get_gateway
from payments.gateways.base import RefundRequest
from payments.models import CheckoutSession, PaymentStatus, ProviderCustomer, WebhookEvent, WebhookEventStatus
from payments.services.checkout import checkout_sync
from payments.services.webhooks import webhook_event_process
from payments.tests.stripe_signing import sign
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db
WEBHOOK_URL = "/api/v1/webhooks/stripe/"
SECRET = "whsec_billing_tests"


@pytest.fixture
def opened(viewer_client, stripe_sandbox):
    """Subscribe the viewer "alice" to a monthly tariff; return the checkout and her client."""
    TariffFactory(slug="monthly", amount=39900, currency="RUB")
    client = viewer_client("alice", "alice@example.com")
    body = client.post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json").json()
    return CheckoutSession.objects.get(pk=body["checkout"]["id"]), client


def access(client) -> dict:
    return client.get("/api/v1/access/").json()


def deliver_sandbox_events(api_client, sandbox) -> list[WebhookEvent]:
    """Deliver every event the sandbox recorded to our endpoint, signed, and process them."""
    events = sorted(sandbox.get("/objects", type="event")["data"], key=lambda e: e["created"])
    for event in events:
        body = json.dumps(event).encode()
        response = api_client.post(
            WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body, SECRET)
        )
        assert response.status_code == 200
    for stored in WebhookEvent.objects.order_by("provider_created_at"):
        webhook_event_process(event_pk=stored.pk)
    return list(WebhookEvent.objects.all())


class TestPaidCheckout:
    def test_paying_with_4242_activates_after_the_re_read(self, opened, stripe_sandbox, api_client):
        checkout, client = opened
        assert access(client)["has_access"] is False
        stripe_sandbox.pay(checkout.provider_session_id, "4242 4242 4242 4242")
        # The redirect alone changes nothing: the checkout is still open on our side.
        checkout.refresh_from_db()
        assert checkout.status == "open"
        status = api_client.get(f"/api/v1/checkouts/{checkout.pk}/").json()
        assert (status["status"], status["payment_status"], status["subscription_status"]) == (
            "complete",
            "succeeded",
            "active",
        )
        payment = checkout.payment
        payment.refresh_from_db()
        assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
        assert payment.provider_payment_id.startswith("pi_")
        assert payment.period_end is not None
        saved = ProviderCustomer.objects.get(account__user_id="alice")
        assert saved.provider == checkout.provider == "stripe"
        assert saved.payment_method_ref.startswith("pm_")
        assert (saved.card_brand, saved.card_last4) == ("visa", "4242")
        assert access(client)["has_access"] is True

    def test_webhooks_alone_activate_a_paid_checkout(self, opened, stripe_sandbox, api_client):
        checkout, client = opened
        stripe_sandbox.pay(checkout.provider_session_id, "4242424242424242")
        events = deliver_sandbox_events(api_client, stripe_sandbox)
        assert {e.type for e in events} >= {"checkout.session.completed", "payment_intent.succeeded"}
        assert all(e.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED) for e in events)
        checkout.refresh_from_db()
        assert checkout.status == "complete"
        assert checkout.subscription.status == SubscriptionStatus.ACTIVE
        assert access(client)["has_access"] is True

    def test_replaying_every_event_changes_nothing_more(self, opened, stripe_sandbox, api_client):
        checkout, _ = opened
        stripe_sandbox.pay(checkout.provider_session_id, "4242424242424242")
        deliver_sandbox_events(api_client, stripe_sandbox)
        payment = checkout.payment
        payment.refresh_from_db()
        first = (payment.status, payment.paid_at, checkout.subscription.current_period_end)
        for event in WebhookEvent.objects.all():
            WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEventStatus.RECEIVED)
            webhook_event_process(event_pk=event.pk)
            checkout_sync(provider_session_id=checkout.provider_session_id)
        payment.refresh_from_db()
        checkout.subscription.refresh_from_db()
        assert (payment.status, payment.paid_at, checkout.subscription.current_period_end) == first


class TestDeclinedCheckout:
    @pytest.mark.parametrize(
        ("card", "code"),
        [("4000000000000002", "generic_decline"), ("4000000000009995", "insufficient_funds")],
    )
    def test_decline_is_shown_and_access_stays_off(self, opened, stripe_sandbox, api_client, card, code):
        checkout, client = opened
        stripe_sandbox.pay(checkout.provider_session_id, card)
        deliver_sandbox_events(api_client, stripe_sandbox)
        status = api_client.get(f"/api/v1/checkouts/{checkout.pk}/").json()
        assert status["status"] == "open"
        assert status["payment_status"] == "pending"
        assert status["failure_code"] == code
        assert status["failure_message"]
        assert access(client)["has_access"] is False

    def test_a_later_good_card_on_the_same_page_still_activates(self, opened, stripe_sandbox, api_client):
        checkout, client = opened
        stripe_sandbox.pay(checkout.provider_session_id, "4000000000000002")
        stripe_sandbox.pay(checkout.provider_session_id, "4242424242424242")
        deliver_sandbox_events(api_client, stripe_sandbox)
        payment = checkout.payment
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.SUCCEEDED
        assert payment.failure_code == ""
        assert access(client)["has_access"] is True


class TestExpiredCheckout:
    def test_expired_checkout_cancels_the_pending_subscription(self, opened, stripe_sandbox, api_client):
        checkout, client = opened
        stripe_sandbox.post("/clock/advance", {"seconds": 2 * 3600})
        # The sandbox expires due sessions when asked about them, like Stripe's sweeper.
        checkout_sync(provider_session_id=checkout.provider_session_id)
        checkout.refresh_from_db()
        assert checkout.status == "expired"
        assert checkout.payment.status == PaymentStatus.CANCELED
        assert checkout.subscription.status == SubscriptionStatus.CANCELED
        assert access(client) == {"has_access": False, "subscription": None}


class TestRefundsMadeInStripe:
    def test_dashboard_refund_shows_up_on_the_payment(self, opened, stripe_sandbox, api_client):
        checkout, _ = opened
        stripe_sandbox.pay(checkout.provider_session_id, "4242424242424242")
        deliver_sandbox_events(api_client, stripe_sandbox)
        payment = checkout.payment
        payment.refresh_from_db()
        # A refund made at Stripe, not through this service (as from Stripe's dashboard).
        made = get_gateway().create_refund(
            RefundRequest(
                payment_intent_id=payment.provider_payment_id,
                amount=10000,
                reason=None,
                metadata={},
                idempotency_key="dashboard-refund-1",
            )
        )
        deliver_sandbox_events(api_client, stripe_sandbox)
        payment.refresh_from_db()
        assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 10000)
        refund = payment.refunds.get()
        assert refund.amount == 10000
        # Dated by when Stripe made it, as the daily reconciliation compares.
        assert refund.succeeded_at == made.created
