"""Insert-or-ignore (core.inserts): provider events stored once, however many times sent; renewal payments once a period."""

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.models import Q

from billing.tests.factories import SubscriptionFactory
from core.inserts import insert_or_ignore
from payments.models import Payment, PaymentKind, WebhookEvent

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


def renewal_payment(subscription: Any, period_start: datetime, kind: str = PaymentKind.RENEWAL) -> Payment:
    return Payment(
        subscription=subscription,
        kind=kind,
        amount=39900,
        currency="RUB",
        period_start=period_start,
        idempotency_key=f"{kind}:{subscription.pk}:{period_start:%Y%m%dT%H%M%SZ}:{uuid.uuid4()}",
    )


@pytest.mark.django_db
def test_a_partial_rule_is_found_with_its_condition_and_only_its_rows_conflict():
    # `one_renewal_payment_per_period` holds only renewal payments: a second renewal of a period
    # is ignored, while a plan change's payment starting at the same moment is stored.
    subscription = SubscriptionFactory()
    renewals = Q(kind=PaymentKind.RENEWAL)
    first = renewal_payment(subscription, CREATED)

    assert insert_or_ignore(first, conflict_fields=("subscription", "period_start"), partial=renewals)
    second = renewal_payment(subscription, CREATED)
    assert not insert_or_ignore(second, conflict_fields=("subscription", "period_start"), partial=renewals)
    change = renewal_payment(subscription, CREATED, kind=PaymentKind.CHANGE)
    assert insert_or_ignore(change, conflict_fields=("subscription", "period_start"), partial=renewals)

    stored = Payment.objects.filter(subscription=subscription).order_by("kind")
    assert [(payment.pk, payment.kind) for payment in stored] == [
        (change.pk, PaymentKind.CHANGE),
        (first.pk, PaymentKind.RENEWAL),
    ]


@pytest.mark.django_db
def test_a_partial_rule_named_without_its_condition_is_refused_by_the_database():
    # The database finds a partial rule's index only with its condition: leaving it out is an
    # error at once, never an insert that silently skips the rule.
    subscription = SubscriptionFactory()
    with pytest.raises(ProgrammingError), transaction.atomic():
        insert_or_ignore(
            renewal_payment(subscription, CREATED), conflict_fields=("subscription", "period_start")
        )
