"""Many simultaneous subscribes of one viewer open one checkout (real PostgreSQL, real threads)."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.tokens import issue_token
from payments.models import CheckoutSession, Payment
from payments.tests.concurrency import run_concurrently
from tariffs.models import Tariff

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/subscriptions/"
REQUESTS = 50


@pytest.fixture
def monthly():
    return Tariff.objects.create(slug="monthly", name="Monthly", amount=39900, currency="RUB")


def subscribe_as_alice(key: str) -> tuple[int, dict]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id='alice')}", HTTP_IDEMPOTENCY_KEY=key)
    response = client.post(URL, {"tariff": "monthly"}, format="json")
    return response.status_code, response.json()


def test_fifty_subscribes_with_one_key_make_one_payment_and_one_session(stripe_sandbox, monthly):
    assert connection.vendor == "postgresql"
    results = run_concurrently(lambda _: subscribe_as_alice("same-key"), REQUESTS)
    # One key, one answer: every request gets the first one stored. That is 201 when the request
    # that created the subscription stored it first, 200 when another, having found the page the
    # creator had just opened, got there before it (seen on a loaded machine); the same page.
    assert len({status for status, _ in results}) == 1
    assert {status for status, _ in results} <= {200, 201}
    assert len({body["checkout_url"] for _, body in results}) == 1
    assert Payment.objects.count() == 1
    assert CheckoutSession.objects.count() == 1
    assert len(stripe_sandbox.objects("checkout.session")) == 1


def test_fifty_subscribes_with_different_keys_leave_one_open_checkout(stripe_sandbox, monthly):
    results = run_concurrently(lambda i: subscribe_as_alice(f"key-{i}"), REQUESTS)
    assert {status for status, _ in results} <= {200, 201}
    assert len({body["checkout"]["id"] for _, body in results}) == 1
    assert CheckoutSession.objects.filter(status="open").count() == 1
    assert len(stripe_sandbox.objects("checkout.session")) == 1
