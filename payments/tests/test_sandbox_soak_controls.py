"""The sandbox's controls for soaking the service: faults that strike a share of requests, and
webhooks sent twice and out of order, as Stripe sends them now and then."""

import json
from pathlib import Path

import pytest
import stripe

from payments.sandbox import start_sandbox
from payments.tests.sandbox_helpers import WEBHOOK_SECRET, Control, WebhookReceiver, make_client, wait_until

CUSTOMERS = 200


def create_customers(client, count: int) -> list[str]:
    """Create `count` customers, one request each; return the outcome of each ("ok" or the error)."""
    outcomes = []
    for _ in range(count):
        try:
            client.v1.customers.create(params={"email": "viewer@cinema.test"})
            outcomes.append("ok")
        except stripe.APIError:
            outcomes.append("error")
    return outcomes


def test_a_fault_with_a_chance_strikes_about_that_share_of_requests():
    with start_sandbox() as sandbox:
        control = Control(sandbox)
        fault = control.post("/faults", {"mode": "error", "path": "/v1/customers", "chance": 0.25})

        outcomes = create_customers(make_client(sandbox), CUSTOMERS)

        struck = outcomes.count("error")
        # 200 draws at 25%: below 20 or above 80 happens far less than once in a billion runs.
        assert 20 <= struck <= 80
        assert control.get("/faults")["data"][0]["hits"] == struck
        assert fault["chance"] == 0.25
        # Spared requests went through: one customer for each of them.
        assert len(control.objects("customer")) == CUSTOMERS - struck


def test_a_fault_with_a_chance_counts_down_only_the_requests_it_strikes():
    with start_sandbox() as sandbox:
        control = Control(sandbox)
        control.post("/faults", {"mode": "error", "path": "/v1/customers", "chance": 0.5, "count": 3})

        outcomes = create_customers(make_client(sandbox), CUSTOMERS)

        assert outcomes.count("error") == 3
        assert control.get("/faults")["data"] == []


@pytest.mark.parametrize("chance", [0, 1.5, True, "half"])
def test_a_chance_outside_zero_to_one_is_refused(chance):
    with start_sandbox() as sandbox:
        answer = Control(sandbox).post("/faults", {"mode": "error", "chance": chance}, expect=400)

    assert "chance" in answer["error"]["message"]


def test_some_events_are_delivered_twice_as_two_deliveries():
    with WebhookReceiver() as receiver, start_sandbox(webhook_url=receiver.url) as sandbox:
        control = Control(sandbox)
        control.post("/config", {"webhook_duplicate_chance": 1})

        make_client(sandbox).v1.customers.create(params={"email": "viewer@cinema.test"})

        (event,) = control.objects("event")
        wait_until(lambda: len(receiver.events()) == 2)
        deliveries = control.get("/deliveries", event=event["id"])["data"]
    assert [e["id"] for e in receiver.events()] == [event["id"], event["id"]]
    assert [d["status"] for d in deliveries] == ["succeeded", "succeeded"]


def test_held_back_deliveries_let_later_events_arrive_first():
    with (
        WebhookReceiver() as receiver,
        start_sandbox(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET) as sandbox,
    ):
        control = Control(sandbox)
        control.post("/config", {"webhook_delay_max": 0.5})
        client = make_client(sandbox)

        for _ in range(30):
            client.v1.customers.create(params={"email": "viewer@cinema.test"})

        recorded = [event["id"] for event in control.objects("event")]
        wait_until(lambda: len(receiver.events()) == len(recorded))
    arrived = [event["id"] for event in receiver.events()]
    assert sorted(arrived) == sorted(recorded)
    # 30 events each held back up to half a second at random: in the recorded order is a
    # chance of 1 in 30! (and then every one is still signed as Stripe signs).
    assert arrived != recorded
    for item in receiver.received:
        stripe.Webhook.construct_event(item["body"], item["headers"]["Stripe-Signature"], WEBHOOK_SECRET)


def test_the_clock_file_can_be_set_while_the_sandbox_runs(tmp_path: Path):
    clock_file = tmp_path / "billing-clock.json"
    clock_file.write_text(json.dumps({"offset_seconds": 40 * 86400}))
    with start_sandbox() as sandbox:
        control = Control(sandbox)
        client = make_client(sandbox)
        before = client.v1.customers.create(params={"email": "viewer@cinema.test"}).created

        control.post("/config", {"clock_file": str(clock_file)})
        after = client.v1.customers.create(params={"email": "viewer@cinema.test"}).created

        assert control.get("/config")["clock_file"] == str(clock_file)
    assert after - before >= 40 * 86400
