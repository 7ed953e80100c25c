"""bench/webhooks' deliveries: signed as Stripe signs them, a share repeated, each stored once."""

from collections import Counter

import pytest

from bench.webhooks import Check
from bench.webhooks_deliveries import (
    EVENT_TYPE,
    Delivery,
    DeliveryPlan,
    answers_parse,
    attempted,
    deliveries_write,
    repeats_in,
)
from payments.gateways.stripe import StripeGateway
from payments.models import WebhookEvent

SECRET = "whsec_billing_tests"  # config/settings/test.py's
URL = "/api/v1/webhooks/stripe/"


def test_deliveries_are_stripe_events_signed_with_the_webhook_secret():
    gateway = StripeGateway("sk_test_bench", SECRET)

    for delivery in DeliveryPlan(secret=SECRET, duplicate_share=0.2, gap=4).batch(20):
        event = gateway.parse_webhook(delivery.body, delivery.signature)

        assert (event.id, event.type) == (delivery.event_id, EVENT_TYPE)
        assert event.object["object"] == "payment_intent"
        assert event.object_id == event.object["id"]


def test_about_a_fifth_repeat_an_event_sent_at_least_the_gap_earlier():
    plan = DeliveryPlan(secret=SECRET, duplicate_share=0.2, gap=10)

    first = plan.batch(2000)
    plan.mark_sent(first)
    second = plan.batch(2000)

    assert repeats_in(first, set()) == pytest.approx(400, abs=60)
    positions = {}
    for position, delivery in enumerate(first):
        if delivery.event_id in positions:
            assert position - positions[delivery.event_id] >= 10
        positions.setdefault(delivery.event_id, position)
    from_first = [delivery for delivery in second if delivery.event_id in positions]
    assert from_first, "later batches repeat events sent in earlier ones"
    assert repeats_in(second, plan.sent_event_ids) == pytest.approx(400, abs=60)


def test_no_repeats_when_the_share_is_zero():
    plan = DeliveryPlan(secret=SECRET, duplicate_share=0.0, gap=1)

    batch = plan.batch(300)

    assert len({delivery.event_id for delivery in batch}) == 300


def test_each_line_of_the_file_is_one_delivery(tmp_path):
    batch = DeliveryPlan(secret=SECRET, duplicate_share=0.2, gap=2).batch(50)

    lines = deliveries_write(tmp_path / "deliveries.txt", batch).read_bytes().splitlines()

    assert [line.split(b"\t", 1) for line in lines] == [
        [delivery.signature.encode(), delivery.body] for delivery in batch
    ]


def test_what_each_wrk_thread_sent_is_found_by_its_stride():
    deliveries = [Delivery(f"evt_{number}", b"{}", "t=0,v1=0") for number in range(5)]

    # Thread 0 sends 0, 2, 4, then begins again at 1; thread 1 sends 1 and 3.
    sent = attempted(deliveries, [4, 2])

    assert [delivery.event_id for delivery in sent] == ["evt_0", "evt_1", "evt_1", "evt_2", "evt_3", "evt_4"]


def test_the_lua_scripts_counts_are_read_from_wrks_output():
    output = (
        "Running 10s test @ http://127.0.0.1:8000/api/v1/webhooks/stripe/\n"
        "  3012 requests in 10.00s, 1.02MB read\n"
        "Requests/sec:    301.20\n"
        "deliveries thread=1 sent=1500 new=1190 duplicate=296 failed=0 wrapped=0\n"
        "deliveries thread=0 sent=1528 new=1210 duplicate=300 failed=2 wrapped=1\n"
    )

    answers = answers_parse(output)

    assert answers.sent_per_thread == [1528, 1500]
    assert (answers.sent, answers.new, answers.duplicate, answers.failed, answers.wrapped) == (
        3028,
        2400,
        596,
        2,
        1,
    )


def test_the_check_fails_when_an_event_is_missing_or_queued_twice():
    stored_once = Check(deliveries=10, distinct_events=8, answered_new=8, rows=8, queued=8)
    missing = Check(deliveries=10, distinct_events=8, answered_new=7, rows=7, queued=7)
    queued_twice = Check(deliveries=10, distinct_events=8, answered_new=8, rows=8, queued=9)

    assert stored_once.passed
    assert not missing.passed
    assert not queued_twice.passed


@pytest.mark.django_db
def test_the_endpoint_stores_each_event_of_a_run_once(api_client, django_capture_on_commit_callbacks):
    plan = DeliveryPlan(secret=SECRET, duplicate_share=0.3, gap=3)
    batch = plan.batch(60)

    with django_capture_on_commit_callbacks() as queued:
        answers = [
            api_client.post(
                URL,
                data=delivery.body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=delivery.signature,
            ).json()
            for delivery in batch
        ]

    distinct = {delivery.event_id for delivery in batch}
    assert WebhookEvent.objects.count() == len(distinct)
    assert set(WebhookEvent.objects.values_list("event_id", flat=True)) == distinct
    assert len(queued) == len(distinct)
    assert Counter(answer["duplicate"] for answer in answers) == {
        False: len(distinct),
        True: repeats_in(batch, set()),
    }
