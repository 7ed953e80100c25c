"""Racing subscribes of one viewer for different tariffs, and Idempotency-Key reuse under load.

Real PostgreSQL, real threads, the sandbox over HTTP: what an adversarial test found here was
a page left payable at Stripe for a checkout we had closed (a lost charge), a deadlock (a 500)
between subscribe and the opening of a page, and a request refused with 422 that still
subscribed.
"""

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import account_get_or_create
from accounts.tokens import issue_token
from billing.models import IdempotentRequest, Subscription, SubscriptionStatus
from payments.models import CheckoutSession, CheckoutStatus, Payment, PaymentStatus, Provider
from payments.services.checkout import checkout_sync
from payments.services.customers import customer_for
from payments.tests.concurrency import run_concurrently
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/subscriptions/"
ROUNDS = 8
TARIFFS = ("monthly", "yearly")


@pytest.fixture
def tariffs():
    TariffFactory(slug="monthly", amount=39900, currency="RUB")
    TariffFactory(slug="yearly", amount=399000, currency="RUB", period_unit="year")


def subscribe(user_id: str, tariff: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id=user_id)}")
    if key:
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id=user_id)}", HTTP_IDEMPOTENCY_KEY=key
        )
    response = client.post(URL, {"tariff": tariff}, format="json")
    return response.status_code, response.json()


def sandbox_status(sandbox) -> dict[str, str]:
    return {session["id"]: session["status"] for session in sandbox.objects("checkout.session")}


def assert_rows_agree_with_stripe(sandbox, user_id: str) -> None:
    """Every page we closed is closed at Stripe too, and exactly one page is left to pay."""
    at_stripe = sandbox_status(sandbox)
    checkouts = CheckoutSession.objects.filter(subscription__account__user_id=user_id)
    for checkout in checkouts:
        if checkout.provider_session_id is None:
            assert checkout.status == CheckoutStatus.EXPIRED  # never opened, never payable
            continue
        assert at_stripe[checkout.provider_session_id] == checkout.status, checkout
    assert checkouts.filter(status=CheckoutStatus.OPEN).count() == 1


@pytest.mark.parametrize("has_customer", [True, False], ids=["known-customer", "new-account"])
def test_racing_subscribes_for_two_tariffs_leave_no_closed_page_payable(
    stripe_sandbox, tariffs, has_customer
):
    assert connection.vendor == "postgresql"
    for round_ in range(ROUNDS):
        user_id = f"racer-{has_customer}-{round_}"
        if has_customer:
            customer_for(account=account_get_or_create(user_id=user_id), provider=Provider.STRIPE)
        results = run_concurrently(lambda i, user_id=user_id: subscribe(user_id, TARIFFS[i]), 2)
        statuses = sorted(status for status, _ in results)
        # One wins; the other either also got a page (then replaced) or was told it was replaced.
        assert 201 in statuses and set(statuses) <= {200, 201, 409}, results
        for status, body in results:
            if status == 409:
                assert body["error"]["code"] in ("checkout_replaced", "subscription_already_exists")
        assert_rows_agree_with_stripe(stripe_sandbox, user_id)


def test_every_page_handed_out_in_a_race_either_gives_access_or_cannot_be_paid(stripe_sandbox, tariffs):
    handed_out: list[str] = []
    for round_ in range(4):
        user_id = f"payer-{round_}"
        results = run_concurrently(lambda i, user_id=user_id: subscribe(user_id, TARIFFS[i]), 2)
        handed_out += [body["checkout"]["id"] for status, body in results if status in (200, 201)]
    for checkout_id in handed_out:
        checkout = CheckoutSession.objects.get(pk=checkout_id)
        assert checkout.provider_session_id is not None
        stripe_sandbox.pay(checkout.provider_session_id, "4242 4242 4242 4242", expect=None)
        checkout_sync(provider_session_id=checkout.provider_session_id)
    paid_at_stripe = {
        s["id"] for s in stripe_sandbox.objects("checkout.session") if s["status"] == "complete"
    }
    assert len(paid_at_stripe) == 4  # one page per viewer could be paid: the others were expired first
    for checkout in CheckoutSession.objects.filter(provider_session_id__in=paid_at_stripe):
        assert checkout.payment is not None and checkout.payment.status == PaymentStatus.SUCCEEDED
        assert checkout.subscription.status == SubscriptionStatus.ACTIVE


def test_one_key_reused_with_different_bodies_at_once_subscribes_only_what_it_answers(
    stripe_sandbox, tariffs
):
    requests = 30
    results = run_concurrently(lambda i: subscribe("keyholder", TARIFFS[i % 2], key="one-key"), requests)
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 201, 422}, statuses
    answered = [body for status, body in results if status in (200, 201)]
    refused = [body for status, body in results if status == 422]
    assert answered and refused
    assert {body["error"]["code"] for body in refused} == {"idempotency_key_reused"}
    # Every request the key let through got the same answer, and it is still payable.
    assert len({body["checkout"]["id"] for body in answered}) == 1
    winner = answered[0]
    checkout = CheckoutSession.objects.get(pk=winner["checkout"]["id"])
    assert checkout.status == CheckoutStatus.OPEN
    # Nothing was subscribed for the refused parameters.
    subscriptions = Subscription.objects.filter(account__user_id="keyholder")
    assert {s.tariff.slug for s in subscriptions} == {winner["subscription"]["tariff"]["slug"]}
    assert Payment.objects.filter(subscription__account__user_id="keyholder").count() == 1
    assert IdempotentRequest.objects.get(key="one-key").response_body == winner


def test_replay_answers_with_the_status_of_the_first_answer(stripe_sandbox, tariffs):
    first_status, first = subscribe("replayer", "monthly")
    assert first_status == 201
    # The same choice again gets the open checkout back: 200, and its replay is 200 too.
    assert subscribe("replayer", "monthly", key="k-200") == (200, first | {"checkout": first["checkout"]})
    status, body = subscribe("replayer", "monthly", key="k-200")
    assert status == 200 and body["checkout"]["id"] == first["checkout"]["id"]


def test_a_failed_request_leaves_its_key_free_for_the_retry(stripe_sandbox, tariffs):
    stripe_sandbox.post("/faults", {"mode": "error", "path": "/v1/customers", "status": 500})
    status, body = subscribe("retrier", "monthly", key="retry-key")
    assert status == 503, body
    stripe_sandbox.delete("/faults")
    # The retry finds the checkout the failed request wrote and opens its page, once.
    status, body = subscribe("retrier", "monthly", key="retry-key")
    assert status == 200, body
    assert subscribe("retrier", "monthly", key="retry-key") == (200, body)
    assert len(stripe_sandbox.objects("checkout.session")) == 1
