"""Fixtures for the subscription engine's tests: subscriptions paid through the sandbox."""

from collections.abc import Callable

import pytest

from billing.models import Subscription
from payments.models import CheckoutSession
from payments.services.checkout import checkout_sync
from tariffs.tests.factories import TariffFactory


@pytest.fixture
def monthly_tariff():
    return TariffFactory(slug="monthly", name="Monthly", amount=39900, currency="RUB")


@pytest.fixture
def paid_subscription(viewer_client, stripe_sandbox, monthly_tariff) -> Callable[..., Subscription]:
    """Return a function that subscribes a viewer and pays the checkout with a test card."""

    def subscribe_and_pay(
        user_id: str = "alice", card: str = "4242424242424242", tariff: str = "monthly"
    ) -> Subscription:
        body = viewer_client(user_id).post("/api/v1/subscriptions/", {"tariff": tariff}, format="json").json()
        checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
        outcome = stripe_sandbox.pay(checkout.stripe_session_id, card)
        if outcome["outcome"] == "requires_action":
            stripe_sandbox.post(
                f"/checkout/{checkout.stripe_session_id}/authenticate", {"action": "complete"}
            )
        assert checkout.stripe_session_id is not None
        checkout_sync(stripe_session_id=checkout.stripe_session_id)
        return Subscription.objects.select_related("account", "tariff").get(pk=checkout.subscription_id)

    return subscribe_and_pay
