"""A hostile JSON body is a 400 in the error shape on every POST endpoint, never a 500."""

import json

import pytest

from accounts.tests.factories import BillingAccountFactory
from billing.models import Subscription
from billing.tests.factories import SubscriptionFactory
from core.parsers import MAX_JSON_DEPTH
from payments.models import RefundRequest
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

DEEP_ARRAY = "[" * 100_000
DEEP_OBJECT = '{"a":' * 100_000


def nested(depth: int) -> str:
    """Return a JSON object whose `tariff` value nests arrays `depth` levels under the root."""
    return '{"tariff": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.fixture
def alice(viewer_client):
    return viewer_client("alice")


@pytest.fixture
def subscription():
    return SubscriptionFactory(account=BillingAccountFactory(user_id="alice"))


@pytest.fixture
def body_urls(subscription):
    """Return the viewer POST endpoints that read a JSON body, aimed at the caller's objects."""
    payment = PaymentFactory(subscription=subscription)
    return [
        "/api/v1/subscriptions/",
        f"/api/v1/subscriptions/{subscription.pk}/autopay/",
        f"/api/v1/payments/{payment.pk}/refund-request/",
    ]


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["arrays", "objects"])
def test_deeply_nested_json_is_400_on_every_endpoint_that_reads_a_body(alice, body_urls, body):
    for url in body_urls:
        response = alice.post(url, body, content_type="application/json")
        assert (url, response.status_code, error_code(response)) == (url, 400, "too_deeply_nested")
    # Nothing was written on the way: no second subscription, no refund request.
    assert Subscription.objects.count() == 1
    assert RefundRequest.objects.count() == 0


@pytest.mark.parametrize("action", ["cancel", "resume"])
def test_endpoints_without_a_body_never_read_a_deeply_nested_one(alice, subscription, action):
    response = alice.post(
        f"/api/v1/subscriptions/{subscription.pk}/{action}/", DEEP_ARRAY, content_type="application/json"
    )
    assert response.status_code < 500


def test_nesting_is_allowed_up_to_the_limit_and_refused_beyond(alice):
    at_limit = alice.post("/api/v1/subscriptions/", nested(MAX_JSON_DEPTH), content_type="application/json")
    beyond = alice.post("/api/v1/subscriptions/", nested(MAX_JSON_DEPTH + 1), content_type="application/json")
    # At the limit the parser lets it through and the serializer refuses a list as a tariff.
    assert (at_limit.status_code, error_code(at_limit)) == (400, "validation_error")
    assert (beyond.status_code, error_code(beyond)) == (400, "too_deeply_nested")


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"tariff": "monthly", "promo_code": "A\x00B"}),
        json.dumps({"tariff\x00": "monthly"}),
        json.dumps({"reason": ["nested", {"deeper": "nul\x00"}]}),
    ],
    ids=["value", "key", "nested value"],
)
def test_nul_character_anywhere_in_the_body_is_400(alice, body):
    response = alice.post("/api/v1/subscriptions/", body, content_type="application/json")
    assert (response.status_code, error_code(response)) == (400, "null_character")


def test_number_too_large_to_be_finite_is_400(alice):
    response = alice.post("/api/v1/subscriptions/", '{"tariff": 1e999}', content_type="application/json")
    assert (response.status_code, error_code(response)) == (400, "number_out_of_range")


def test_unpaired_surrogate_is_400(alice):
    response = alice.post("/api/v1/subscriptions/", '{"tariff": "\\ud800"}', content_type="application/json")
    assert (response.status_code, error_code(response)) == (400, "invalid_unicode")


@pytest.mark.parametrize("body", ["{not json", '{"tariff": NaN}', b'{"tariff": "\xff"}'], ids=str)
def test_malformed_json_keeps_its_parse_error_code(alice, body):
    response = alice.post("/api/v1/subscriptions/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "parse_error", "message": response.json()["error"]["message"], "details": {}}
    }
