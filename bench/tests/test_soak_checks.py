"""The checks of bench/soak catch what they are there to catch: each is shown a broken rule.

A check that can only say "fine" would let the soak pass whatever the service did, so each is
fed the shape of a double charge, a missed period, an event out of order, a webhook answered
500, and must name it. tests/e2e/test_soak.py runs the soak itself.
"""

import json
import time
from typing import Literal

import pytest
from django.db import transaction
from django.utils import timezone

from bench.soak_checks import events_delivered_in_order, period_charges, scrape, webhooks_as_sent
from bench.soak_processes import EventReceiver, ReceivedEvents
from billing.periods import add_months
from billing.tests.factories import SubscriptionFactory
from notifications.services.events import event_publish, signature_header
from payments.models import Payment
from tests.concurrency.invariants import ChargeFate

SECRET = "soak-checks-secret"


# --- charged exactly once per period ------------------------------------------------------------


@pytest.fixture
def renewing():
    """A subscription seeded in its first month, renewed twice since: its second and third are paid for."""
    anchor = add_months(timezone.now(), -2)
    subscription = SubscriptionFactory(
        billing_anchor=anchor,
        current_period_start=add_months(anchor, 2),
        current_period_end=add_months(anchor, 3),
    )
    return subscription, [add_months(anchor, month) for month in (1, 2, 3)]


def charge(
    subscription, period_start, *, intent: str, fate: Literal["access", "refunded", "lost"] = "access"
) -> ChargeFate:
    payment = Payment(subscription=subscription, period_start=period_start, amount=39900, currency="RUB")
    return ChargeFate(
        intent_id=intent, amount=39900, currency="rub", customer="cus_1", payment=payment, fate=fate, why=""
    )


@pytest.mark.django_db
class TestPeriodCharges:
    def test_one_charge_for_each_period_passes(self, renewing):
        subscription, (second, third, _) = renewing

        found = period_charges(
            [charge(subscription, second, intent="pi_1"), charge(subscription, third, intent="pi_2")],
            {subscription.pk: second},
        )

        assert found.problems == []
        assert found.periods == 2

    def test_two_charges_for_one_period_are_a_double_charge_even_when_one_was_refunded(self, renewing):
        subscription, (second, third, _) = renewing

        found = period_charges(
            [
                charge(subscription, second, intent="pi_1"),
                charge(subscription, third, intent="pi_2"),
                charge(subscription, third, intent="pi_3", fate="refunded"),
            ],
            {subscription.pk: second},
        )

        assert len(found.double) == 1
        assert "charged 2 times (pi_2, pi_3; 1 refunded in full)" in found.double[0]
        assert found.not_once == []

    def test_a_period_renewed_into_without_a_charge_is_named(self, renewing):
        subscription, (second, third, _) = renewing

        found = period_charges([charge(subscription, third, intent="pi_2")], {subscription.pk: second})

        assert found.double == []
        assert len(found.not_once) == 1
        assert "which no charge paid" in found.not_once[0]

    def test_a_kept_charge_for_a_period_never_reached_is_named_a_refunded_one_is_not(self, renewing):
        subscription, (second, third, fourth) = renewing
        paid = [charge(subscription, second, intent="pi_1"), charge(subscription, third, intent="pi_2")]

        kept = period_charges([*paid, charge(subscription, fourth, intent="pi_3")], {subscription.pk: second})
        refunded = period_charges(
            [*paid, charge(subscription, fourth, intent="pi_3", fate="refunded")], {subscription.pk: second}
        )

        assert len(kept.not_once) == 1
        assert "never reached, was not refunded" in kept.not_once[0]
        assert refunded.problems == []


# --- events to the other services -------------------------------------------------------------


@pytest.fixture
def three_events():
    """A subscription that published events 1, 2 and 3; return its id as the envelope has it."""
    subscription = SubscriptionFactory()
    for type_ in ("access.granted", "payment.succeeded", "subscription.canceled"):
        with transaction.atomic():
            event_publish(type=type_, subscription=subscription, payload={})
    return str(subscription.pk)


def arrived(subscription_id: str, sequences: list[int]) -> ReceivedEvents:
    received = ReceivedEvents()
    received.sequences[subscription_id] = sequences
    return received


@pytest.mark.django_db
class TestEventsDeliveredInOrder:
    def test_every_event_in_order_passes_and_a_repeated_delivery_is_counted(self, three_events):
        found = events_delivered_in_order(arrived(three_events, [1, 2, 2, 3]))

        assert found.problems == []
        assert (found.published, found.received, found.repeats) == (3, 4, 1)

    def test_an_event_after_a_later_one_is_out_of_order(self, three_events):
        found = events_delivered_in_order(arrived(three_events, [1, 3, 2]))

        assert found.problems == [
            f"subscription {three_events}: event 2 arrived after event 3 (arrival order [1, 3, 2])"
        ]

    def test_an_event_that_never_arrived_is_missing(self, three_events):
        found = events_delivered_in_order(arrived(three_events, [1, 3]))

        assert found.problems == [f"subscription {three_events}: events [2] never arrived"]


def test_the_receiver_takes_a_genuine_event_and_refuses_a_forged_one():
    receiver = EventReceiver(SECRET)
    try:
        body = json.dumps({"subscription_id": "sub-1", "sequence": 1, "type": "access.granted"}).encode()
        genuine = signature_header(secret=SECRET, body=body, timestamp=int(time.time()))
        forged = signature_header(secret="another secret", body=body, timestamp=int(time.time()))

        assert receiver.take(body, genuine) == 200
        assert receiver.take(body, forged) == 400
        assert receiver.take(body, "") == 400
    finally:
        receiver.stop()
    assert receiver.received.sequences == {"sub-1": [1]}
    assert (receiver.received.posts, receiver.received.bad_signatures) == (3, 2)


# --- webhooks as the sandbox sent them ------------------------------------------------------------


def delivery(event: str, *, created: float, accepted_at: float | None, status_code: int = 200) -> dict:
    attempts = [{"status_code": status_code, "at": accepted_at if accepted_at is not None else created + 1}]
    succeeded = 200 <= status_code < 300
    return {
        "id": f"whdel_{event}_{created}",
        "event": event,
        "type": "payment_intent.succeeded",
        "status": "succeeded" if succeeded else "failed",
        "attempts": attempts,
        "created": created,
    }


def test_webhooks_count_duplicates_and_events_a_later_one_overtook():
    found = webhooks_as_sent(
        [
            delivery("evt_a", created=1.0, accepted_at=5.0),
            delivery("evt_b", created=2.0, accepted_at=3.0),  # recorded after evt_a, arrived first
            delivery("evt_b", created=2.0, accepted_at=6.0),  # and sent twice
            delivery("evt_c", created=3.0, accepted_at=7.0),
        ]
    )

    assert (found.deliveries, found.events, found.sent_twice, found.overtaken) == (4, 3, 1, 1)
    assert found.server_errors == found.undelivered == []


def test_a_webhook_answered_500_is_a_server_error_and_503_is_not():
    found = webhooks_as_sent(
        [
            delivery("evt_a", created=1.0, accepted_at=None, status_code=500),
            delivery("evt_b", created=2.0, accepted_at=None, status_code=503),
        ]
    )

    assert found.server_errors == ["webhook payment_intent.succeeded evt_a answered 500"]
    assert len(found.undelivered) == 2
    assert found.attempts == {"500": 1, "503": 1}


# --- the metrics ----------------------------------------------------------------------------------


def test_scrape_sums_the_counters_that_tell_what_happened():
    text = "\n".join(
        [
            "# TYPE billing_renewals_total counter",
            'billing_renewals_total{outcome="renewed"} 40.0',
            'billing_renewals_total{outcome="error"} 2.0',
            "# TYPE billing_http_requests_total counter",
            'billing_http_requests_total{route="/api/v1/access/",method="GET",status="200"} 7.0',
            'billing_http_requests_total{route="/api/v1/subscriptions/",method="POST",status="201"} 3.0',
            'billing_http_requests_total{route="/api/v1/subscriptions/",method="POST",status="503"} 1.0',
            "# TYPE billing_webhook_events_received_total counter",
            'billing_webhook_events_received_total{provider="stripe",source="webhook",duplicate="true"} 5.0',
            "# TYPE billing_other_total counter",
            "billing_other_total 9.0",
        ]
    )

    assert scrape(text + "\n") == {
        "HTTP answers{status=2xx}": 10.0,
        "HTTP answers{status=503}": 1.0,
        "renewals{outcome=error}": 2.0,
        "renewals{outcome=renewed}": 40.0,
        "webhook events received{source=webhook,duplicate=true}": 5.0,
    }
