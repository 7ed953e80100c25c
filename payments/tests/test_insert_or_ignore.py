"""Insert-or-ignore (core.inserts) on provider events: stored once, however many times sent."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from core.inserts import insert_or_ignore
from payments.models import WebhookEvent

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(event_id: str = "evt_1", **changes: object) -> WebhookEvent:
    fields: dict[str, object] = {
        "event_id": event_id,
        "type": "payment_intent.succeeded",
        "object_id": "pi_1",
        "provider_created_at": CREATED,
        "payload": {"id": "pi_1", "amount": 39900, "nested": {"list": [1, "two", None]}},
        **changes,
    }
    return WebhookEvent(**fields)


@pytest.mark.django_db
def test_a_new_row_is_stored_with_its_defaults_and_gets_its_key():
    stored = event()
    assert insert_or_ignore(stored, conflict_fields=["event_id", "provider"]) is True
    row = WebhookEvent.objects.get(pk=stored.pk)
    assert (row.event_id, row.provider, row.status, row.attempts) == ("evt_1", "stripe", "received", 0)
    assert row.payload == stored.payload
    assert row.provider_created_at == CREATED
    assert row.received_at is not None


@pytest.mark.django_db
def test_a_repeat_changes_nothing_and_says_so():
    insert_or_ignore(event(type="first.type"), conflict_fields=["event_id", "provider"])
    repeat = event(type="second.type")
    assert insert_or_ignore(repeat, conflict_fields=["event_id", "provider"]) is False
    assert repeat.pk is None
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["first.type"]


@pytest.mark.django_db
def test_a_repeat_inside_a_transaction_leaves_it_usable():
    with transaction.atomic():
        insert_or_ignore(event(), conflict_fields=["event_id", "provider"])
        insert_or_ignore(event(), conflict_fields=["event_id", "provider"])
        # An insert that failed would have aborted the transaction: this query would raise.
        assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_rule_other_than_the_named_one_still_raises():
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_or_ignore(event(status="no-such-status"), conflict_fields=["event_id", "provider"])


@pytest.mark.django_db(transaction=True)
def test_the_same_row_sent_by_many_threads_at_once_is_stored_once():
    start = threading.Barrier(8)
    answers: list[bool] = []

    def deliver() -> None:
        try:
            start.wait()
            answers.append(insert_or_ignore(event("evt_race"), conflict_fields=["event_id", "provider"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False] * 7 + [True]
    assert WebhookEvent.objects.filter(event_id="evt_race").count() == 1
