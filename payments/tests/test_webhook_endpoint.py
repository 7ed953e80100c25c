"""Only Stripe can talk to the webhook endpoint, and each event is stored exactly once."""

import time

import pytest

from payments.models import WebhookEvent, WebhookEventStatus
from payments.services.webhooks import webhook_event_process
from payments.tests.stripe_signing import event_body, sign

URL = "/api/v1/webhooks/stripe/"
SECRET = "whsec_billing_tests"
pytestmark = pytest.mark.django_db


def post(client, body: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, data=body, content_type="application/json", **headers)


@pytest.fixture
def body() -> bytes:
    return event_body("evt_test_1", "customer.created", {"id": "cus_1", "object": "customer"})


def assert_refused(response) -> None:
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert WebhookEvent.objects.count() == 0


class TestSignature:
    def test_unsigned_event_is_refused(self, api_client, body):
        assert_refused(post(api_client, body, None))

    def test_event_signed_with_another_secret_is_refused(self, api_client, body):
        assert_refused(post(api_client, body, sign(body, "whsec_someone_else")))

    def test_one_altered_byte_is_refused(self, api_client, body):
        signature = sign(body, SECRET)
        altered = body.replace(b"cus_1", b"cus_2")
        assert len(altered) == len(body)
        assert_refused(post(api_client, altered, signature))

    def test_ten_minute_old_event_is_refused(self, api_client, body):
        assert_refused(post(api_client, body, sign(body, SECRET, timestamp=int(time.time()) - 600)))

    def test_garbage_signature_header_is_refused(self, api_client, body):
        assert_refused(post(api_client, body, "t=abc,v1=zzz"))

    def test_signed_event_is_stored_and_queued(self, api_client, django_capture_on_commit_callbacks):
        body = event_body(
            "evt_test_2", "checkout.session.completed", {"id": "cs_1", "object": "checkout.session"}
        )
        with django_capture_on_commit_callbacks() as queued:
            response = post(api_client, body, sign(body, SECRET))
        assert response.status_code == 200
        assert response.json() == {"received": True, "duplicate": False}
        stored = WebhookEvent.objects.get()
        assert (stored.event_id, stored.type, stored.object_id) == (
            "evt_test_2",
            "checkout.session.completed",
            "cs_1",
        )
        assert stored.status == WebhookEventStatus.RECEIVED
        assert len(queued) == 1


class TestDuplicates:
    def test_redelivered_event_is_acknowledged_and_changes_nothing(
        self, api_client, body, django_capture_on_commit_callbacks
    ):
        post(api_client, body, sign(body, SECRET))
        with django_capture_on_commit_callbacks() as queued:
            response = post(api_client, body, sign(body, SECRET))
        assert response.json() == {"received": True, "duplicate": True}
        assert WebhookEvent.objects.count() == 1
        assert queued == []

    def test_an_event_we_do_not_act_on_is_stored_ignored_and_queues_nothing(
        self, api_client, body, django_capture_on_commit_callbacks
    ):
        # Most of what Stripe sends (customer.created here) calls for nothing: no task is queued,
        # so a broker restart cannot leave such an event waiting for the reconciliation job.
        with django_capture_on_commit_callbacks() as queued:
            post(api_client, body, sign(body, SECRET))
        event = WebhookEvent.objects.get()
        assert (event.status, event.attempts) == (WebhookEventStatus.IGNORED, 0)
        assert event.processed_at is not None
        assert queued == []

    def test_processing_an_event_already_settled_does_nothing(self, api_client, body):
        post(api_client, body, sign(body, SECRET))
        pk = WebhookEvent.objects.get().pk
        again = webhook_event_process(event_pk=pk)
        assert again is not None
        assert (again.status, again.attempts) == (WebhookEventStatus.IGNORED, 0)
