"""Fixtures for the subscription engine's tests: subscriptions paid at the provider the test chose."""

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
def paid_subscription(request, viewer_client, monthly_tariff) -> Callable[..., Subscription]:
    """Return a function that subscribes a viewer and pays the checkout with a test card.

    It pays at the provider the test chose: the in-memory one when the test uses
    `memory_provider` (a domain rule: cancellation, goodwill, pricing), the HTTP sandbox
    otherwise (renewal workers in other processes, the gateway's own behaviour).
    """
    if "memory_provider" in request.fixturenames:
        provider = request.getfixturevalue("memory_provider")

        def pay(session_id: str, card: str) -> None:
            if provider.pay(session_id, card).outcome == "requires_action":
                provider.authenticate(session_id)

    else:
        sandbox = request.getfixturevalue("stripe_sandbox")

        def pay(session_id: str, card: str) -> None:
            if sandbox.pay(session_id, card)["outcome"] == "requires_action":
                sandbox.post(f"/checkout/{session_id}/authenticate", {"action": "complete"})

    def subscribe_and_pay(
        user_id: str = "alice", card: str = "4242424242424242", tariff: str = "monthly"
    ) -> Subscription:
        body = viewer_client(user_id).post("/api/v1/subscriptions/", {"tariff": tariff}, format="json").json()
        checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
        assert checkout.provider_session_id is not None
        pay(checkout.provider_session_id, card)
        checkout_sync(provider_session_id=checkout.provider_session_id)
        return Subscription.objects.select_related("account", "tariff").get(pk=checkout.subscription_id)

    return subscribe_and_pay
