"""Webhooks from the sandbox: signed as Stripe signs, delivered in the background, retried."""

import pytest
import stripe

from payments.sandbox import start_sandbox
from payments.tests.sandbox_helpers import (
    WEBHOOK_SECRET,
    Control,
    WebhookReceiver,
    make_client,
    payment_session_params,
    wait_until,
)


def start(receiver, **options):
    return start_sandbox(
        webhook_url=receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        webhook_retry_base=0.05,
        webhook_retry_cap=0.2,
        **options,
    )


def test_event_is_delivered_with_a_signature_the_sdk_verifies():
    with WebhookReceiver() as receiver, start(receiver) as sandbox:
        client = make_client(sandbox)
        customer = client.v1.customers.create(params={"email": "viewer@cinema.test"})
        session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
        Control(sandbox).pay(session.id, "4242424242424242")

        wait_until(lambda: "checkout.session.completed" in [e["type"] for e in receiver.events()])

    delivered = next(item for item in receiver.received if b"checkout.session.completed" in item["body"])
    event = stripe.Webhook.construct_event(
        delivered["body"], delivered["headers"]["Stripe-Signature"], WEBHOOK_SECRET
    )
    assert event.type == "checkout.session.completed"
    assert event.data.object.id == session.id
    assert event.data.object.payment_status == "paid"
    assert delivered["headers"]["Content-Type"].startswith("application/json")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            delivered["body"], delivered["headers"]["Stripe-Signature"], "whsec_other"
        )


def test_event_shape_carries_the_request_that_caused_it():
    with WebhookReceiver() as receiver, start(receiver) as sandbox:
        client = make_client(sandbox)
        customer = client.v1.customers.create(
            params={"email": "viewer@cinema.test"}, options={"idempotency_key": "customer-42"}
        )

        event = wait_until(lambda: receiver.events())[0]

    assert (event["type"], event["object"], event["livemode"]) == ("customer.created", "event", False)
    assert event["id"].startswith("evt_")
    assert event["data"]["object"]["id"] == customer.id
    assert event["request"]["idempotency_key"] == "customer-42"
    assert event["request"]["id"].startswith("req_")
    assert event["pending_webhooks"] == 1


def test_failed_delivery_is_retried_with_backoff_until_accepted():
    with WebhookReceiver(statuses=[500, 500, 200]) as receiver, start(receiver) as sandbox:
        control = Control(sandbox)
        client = make_client(sandbox)
        customer = client.v1.customers.create(params={"email": "viewer@cinema.test"})

        delivery = wait_until(lambda: control.get("/deliveries", status="succeeded")["data"])[0]
        event = client.v1.events.retrieve(delivery["event"])

    assert [item["status"] for item in receiver.received] == [500, 500, 200]
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [500, 500, 200]
    assert receiver.events()[0]["data"]["object"]["id"] == customer.id
    # 50 ms after the first failure, then the wait doubles; none after the success.
    assert [attempt["retry_in"] for attempt in delivery["attempts"]] == [0.05, 0.1, None]
    assert event.pending_webhooks == 0


def test_delivery_gives_up_after_the_last_attempt():
    with WebhookReceiver(statuses=[500] * 10) as receiver, start(receiver, webhook_max_attempts=3) as sandbox:
        control = Control(sandbox)
        make_client(sandbox).v1.customers.create(params={"email": "viewer@cinema.test"})

        delivery = wait_until(lambda: control.get("/deliveries", status="failed")["data"])[0]

    assert len(delivery["attempts"]) == 3
    assert len(receiver.received) == 3


def test_unreachable_endpoint_counts_as_a_failed_attempt():
    with start_sandbox(
        webhook_url="http://127.0.0.1:9/unreachable", webhook_retry_base=0.05, webhook_max_attempts=2
    ) as sandbox:
        control = Control(sandbox)
        make_client(sandbox).v1.customers.create(params={"email": "viewer@cinema.test"})

        delivery = wait_until(lambda: control.get("/deliveries", status="failed")["data"])[0]

    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [None, None]
    assert delivery["attempts"][0]["error"]


def test_paused_deliveries_go_out_on_resume_to_the_url_set_at_runtime():
    with WebhookReceiver() as first, WebhookReceiver() as second, start(first) as sandbox:
        control = Control(sandbox)
        client = make_client(sandbox)
        control.post("/webhooks/pause")
        client.v1.customers.create(params={"email": "viewer@cinema.test"})
        control.post("/config", {"webhook_url": second.url})

        assert control.get("/deliveries", status="pending")["count"] == 1
        control.post("/webhooks/resume")
        wait_until(lambda: second.events())

    assert first.received == []
    assert second.events()[0]["type"] == "customer.created"


def test_events_without_a_webhook_url_are_kept_but_not_sent():
    with start_sandbox() as sandbox:
        client = make_client(sandbox)
        client.v1.customers.create(params={"email": "viewer@cinema.test"})

        assert client.v1.events.list().data[0].type == "customer.created"
        assert Control(sandbox).get("/deliveries")["count"] == 0
