"""Events reach every endpoint at least once, in order per subscription, signed as documented."""

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from billing.tests.factories import SubscriptionFactory
from notifications.models import DeliveryStatus, EndpointSource, EventDelivery, EventEndpoint, OutboxEvent
from notifications.services.events import (
    BACKOFF_FIRST,
    deliveries_dispatch,
    delivery_redeliver,
    event_publish,
)
from notifications.tests.conftest import SECRET
from notifications.tests.receiver import LocalReceiver, docs_receiver_namespace
from payments.tests.concurrency import run_concurrently


def publish(subscription, type_: str, **data) -> OutboxEvent:
    with transaction.atomic():
        return event_publish(type=type_, subscription=subscription, payload=data)


def received_events(receiver: LocalReceiver, *, status: int = 200) -> list[dict]:
    return [json.loads(r.body) for r in receiver.received if r.status == status]


def in_order_per_subscription(events: list[dict]) -> bool:
    by_subscription: dict[str, list[int]] = {}
    for event in events:
        by_subscription.setdefault(event["subscription_id"], []).append(event["sequence"])
    return all(sequences == sorted(sequences) for sequences in by_subscription.values())


@pytest.fixture
def documented_receiver(receiver):
    """Put the receiver example of docs/events.md behind the local HTTP receiver."""
    docs = docs_receiver_namespace()
    documented = docs["Receiver"](SECRET)
    receiver.answer = documented.handle
    return documented


@pytest.mark.django_db
class TestDocumentedReceiver:
    def test_genuine_deliveries_are_accepted_and_each_event_applied_once(
        self, endpoint, receiver, documented_receiver
    ):
        first, second = SubscriptionFactory(), SubscriptionFactory()
        published = [
            publish(first, "access.granted"),
            publish(second, "access.granted"),
            publish(first, "payment.succeeded", payment={"amount": 39900}),
            publish(first, "subscription.canceled", at_period_end=True),
        ]

        assert deliveries_dispatch() == 4
        # Support redelivers one: the receiver acknowledges it and does not apply it again.
        delivery_redeliver(delivery=EventDelivery.objects.get(event=published[2]))
        deliveries_dispatch()

        assert [r.status for r in receiver.received] == [200] * 5
        assert [e["id"] for e in documented_receiver.applied] == [str(e.pk) for e in published]
        assert documented_receiver.applied[2] == {
            "id": str(published[2].pk),
            "type": "payment.succeeded",
            "created": published[2].occurred_at.isoformat().replace("+00:00", "Z"),
            "subscription_id": str(first.pk),
            "user_id": first.account.user_id,
            "sequence": 2,
            "data": {"payment": {"amount": 39900}},
        }
        headers = receiver.received[0].headers
        assert headers["Billing-Event-Id"] == str(published[0].pk)
        assert headers["Billing-Event-Type"] == "access.granted"
        assert headers["Content-Type"] == "application/json"

    def test_altered_forged_and_replayed_deliveries_are_rejected(
        self, endpoint, receiver, documented_receiver
    ):
        publish(SubscriptionFactory(), "access.granted")
        deliveries_dispatch()
        genuine = receiver.received[0]
        signature = genuine.headers["Billing-Signature"]
        timestamp = int(signature.split(",")[0].removeprefix("t="))
        docs = docs_receiver_namespace()
        fresh = docs["Receiver"](SECRET)
        altered = genuine.body.replace(b'"access.granted"', b'"access.revoked"')

        assert fresh.handle(altered, {"Billing-Signature": signature}) == 400
        assert fresh.handle(genuine.body, {"Billing-Signature": f"t={timestamp},v1={'0' * 64}"}) == 400
        assert fresh.handle(genuine.body, {"Billing-Signature": ""}) == 400
        assert (
            docs["Receiver"]("whsec_someone_else").handle(genuine.body, {"Billing-Signature": signature})
            == 400
        )
        # Replayed later than the tolerance: refused; replayed within it: applied only once.
        replay_later = timestamp + docs["TOLERANCE_SECONDS"] + 1
        assert fresh.handle(genuine.body, {"Billing-Signature": signature}, now=replay_later) == 400
        assert fresh.handle(genuine.body, {"Billing-Signature": signature}) == 200
        assert fresh.handle(genuine.body, {"Billing-Signature": signature}) == 200
        assert len(fresh.applied) == 1
        with pytest.raises(docs["RejectedDelivery"]):
            docs["verify"](altered, signature, SECRET)


@pytest.mark.django_db
class TestRetries:
    def test_receiver_down_then_failing_gets_every_event_in_order_with_backoff(
        self, endpoint, receiver, documented_receiver
    ):
        subscriptions = [SubscriptionFactory(), SubscriptionFactory()]
        for subscription in subscriptions:
            for type_ in ("access.granted", "payment.succeeded", "subscription.renewed"):
                publish(subscription, type_)
        receiver.stop()  # down: connections are refused
        start = timezone.now()

        def run_at(seconds: float) -> int:
            return deliveries_dispatch(now=start + timedelta(seconds=seconds))

        assert run_at(0) == 0
        waiting = EventDelivery.objects.filter(attempts=1)
        # Only the first event of each subscription was tried: the rest wait behind it.
        assert sorted(waiting.values_list("sequence", flat=True)) == [1, 1]
        assert {d.next_attempt_at for d in waiting} == {start + BACKOFF_FIRST}
        assert all("Connection refused" in d.last_error for d in waiting)
        assert run_at(4.9) == 0
        assert EventDelivery.objects.filter(attempts__gt=1).count() == 0  # not due yet: not tried

        receiver.start()
        receiver.answer = lambda body, headers: 500  # back, but failing
        assert run_at(5) == 0
        assert run_at(14.9) == 0  # the second wait is twice the first
        assert len(receiver.received) == 2
        assert run_at(15) == 0
        assert run_at(34.9) == 0  # and the third twice the second
        assert len(receiver.received) == 4
        tried = EventDelivery.objects.filter(sequence=1)
        assert {(d.attempts, d.last_status_code, d.next_attempt_at) for d in tried} == {
            (3, 500, start + timedelta(seconds=35))
        }

        receiver.answer = documented_receiver.handle  # healthy again
        assert run_at(35) == 6

        assert EventDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 6
        assert len(documented_receiver.applied) == 6
        assert in_order_per_subscription(documented_receiver.applied)
        assert [
            e["sequence"]
            for e in documented_receiver.applied
            if e["subscription_id"] == str(subscriptions[0].pk)
        ] == [1, 2, 3]

    def test_a_failing_subscription_does_not_hold_back_the_others(self, endpoint, receiver):
        stuck, other = SubscriptionFactory(), SubscriptionFactory()
        publish(stuck, "access.granted")
        publish(stuck, "subscription.renewed")
        publish(other, "access.granted")
        receiver.answer = lambda body, headers: (
            500 if json.loads(body)["subscription_id"] == str(stuck.pk) else 200
        )

        deliveries_dispatch()

        assert [(e["subscription_id"], e["sequence"]) for e in received_events(receiver)] == [
            (str(other.pk), 1)
        ]
        assert EventDelivery.objects.get(subscription=stuck, sequence=2).attempts == 0

    def test_a_long_queue_behind_a_failing_event_does_not_fill_the_batch(
        self, endpoint, receiver, monkeypatch
    ):
        monkeypatch.setattr("notifications.services.events.DISPATCH_BATCH", 3)
        stuck, other = SubscriptionFactory(), SubscriptionFactory()
        for _ in range(5):
            publish(stuck, "subscription.renewed")
        publish(other, "access.granted")
        receiver.answer = lambda body, headers: (
            500 if json.loads(body)["subscription_id"] == str(stuck.pk) else 200
        )

        deliveries_dispatch()

        assert [e["subscription_id"] for e in received_events(receiver)] == [str(other.pk)]


@pytest.mark.django_db
class TestEndpoints:
    def test_endpoints_get_only_their_types_and_an_inactive_one_waits(self, endpoint, receiver):
        second = LocalReceiver()
        second.start()
        try:
            access_only = EventEndpoint.objects.create(
                url=second.url, secret="whsec_2", event_types=["access.granted", "access.revoked"]
            )
            subscription = SubscriptionFactory()
            publish(subscription, "access.granted")
            publish(subscription, "payment.succeeded")
            access_only.active = False
            access_only.save()

            deliveries_dispatch()
            assert second.received == []
            access_only.active = True
            access_only.save()
            deliveries_dispatch()

            assert [json.loads(r.body)["type"] for r in second.received] == ["access.granted"]
            assert [json.loads(r.body)["type"] for r in receiver.received] == [
                "access.granted",
                "payment.succeeded",
            ]
        finally:
            second.stop()

    def test_environment_endpoints_are_signed_with_the_environment_secret(self, receiver, settings):
        settings.EVENT_SIGNING_SECRET = "whsec_from_environment"
        settings.EVENT_ENDPOINTS = [{"url": receiver.url, "event_types": ["access.granted"]}]
        documented = docs_receiver_namespace()["Receiver"]("whsec_from_environment")
        receiver.answer = documented.handle
        subscription = SubscriptionFactory()

        publish(subscription, "access.granted")
        publish(subscription, "payment.succeeded")
        deliveries_dispatch()

        assert [e["type"] for e in documented.applied] == ["access.granted"]
        assert EventEndpoint.objects.get().source == EndpointSource.ENVIRONMENT
        # Removed from the environment: it receives nothing more.
        settings.EVENT_ENDPOINTS = []
        publish(subscription, "access.revoked")
        deliveries_dispatch()
        assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_dispatchers_running_at_once_deliver_each_event_once(endpoint, receiver):
    subscriptions = [SubscriptionFactory() for _ in range(5)]
    for subscription in subscriptions:
        for type_ in ("access.granted", "payment.succeeded", "subscription.renewed"):
            publish(subscription, type_)
    receiver.delay = 0.02  # slow enough for the runs to overlap

    started = time.monotonic()
    counts = run_concurrently(lambda _: deliveries_dispatch(), 4)
    while (
        EventDelivery.objects.filter(status=DeliveryStatus.PENDING).exists()
        and time.monotonic() - started < 20
    ):
        deliveries_dispatch()

    ids = [event["id"] for event in received_events(receiver)]
    assert len(ids) == len(set(ids)) == 15
    assert sum(counts) <= 15
    assert in_order_per_subscription(received_events(receiver))
