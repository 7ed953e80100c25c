"""A promo code's limit holds when many viewers redeem it at once (real PostgreSQL, real threads)."""

from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.tokens import issue_token
from billing.models import Subscription
from payments.tests.concurrency import run_concurrently
from tariffs.models import PromoCode, PromoKind, PromoRedemption, Tariff

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/subscriptions/"
VIEWERS = 50
LIMIT = 10


@pytest.fixture
def monthly():
    return Tariff.objects.create(slug="monthly", name="Monthly", amount=39900, currency="RUB")


@pytest.fixture
def limited_code():
    return PromoCode.objects.create(
        code="FIRST10", kind=PromoKind.PERCENT, percent_off=50, duration="once", max_redemptions=LIMIT
    )


def subscribe_as(user_id: str, promo_code: str) -> tuple[int, dict]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id=user_id)}")
    response = client.post(URL, {"tariff": "monthly", "promo_code": promo_code}, format="json")
    return response.status_code, response.json()


def test_fifty_viewers_racing_for_ten_uses_get_exactly_ten(stripe_sandbox, monthly, limited_code):
    assert connection.vendor == "postgresql"

    results = run_concurrently(lambda i: subscribe_as(f"viewer-{i}", "first10"), VIEWERS)

    outcomes = Counter(
        "created" if status == 201 else f"{status} {body['error']['code']}" for status, body in results
    )
    assert outcomes == {"created": LIMIT, "400 promo_code_exhausted": VIEWERS - LIMIT}
    limited_code.refresh_from_db()
    assert limited_code.times_redeemed == LIMIT
    assert PromoRedemption.objects.count() == LIMIT
    assert Subscription.objects.count() == LIMIT
    assert {body["payment"]["amount"] for status, body in results if status == 201} == {19950}
    assert len(stripe_sandbox.objects("checkout.session")) == LIMIT


def test_uses_given_back_by_expired_checkouts_are_taken_once_under_a_race(
    stripe_sandbox, monthly, limited_code
):
    """Ten pending subscriptions end unpaid; fifty viewers race for the ten uses they give back."""
    first = run_concurrently(lambda i: subscribe_as(f"early-{i}", "FIRST10"), LIMIT)
    assert {status for status, _ in first} == {201}
    for i, (_, body) in enumerate(first):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id=f'early-{i}')}")
        canceled = client.post(f"{URL}{body['subscription']['id']}/cancel/")
        assert canceled.status_code == 200, canceled.json()

    results = run_concurrently(lambda i: subscribe_as(f"late-{i}", "FIRST10"), VIEWERS)

    assert Counter(status for status, _ in results) == {201: LIMIT, 400: VIEWERS - LIMIT}
    limited_code.refresh_from_db()
    assert limited_code.times_redeemed == LIMIT
    assert PromoRedemption.objects.filter(released_at__isnull=True).count() == LIMIT
    assert PromoRedemption.objects.filter(released_at__isnull=False).count() == LIMIT
