"""Retention: old delivered events and sent notices go, in batches; anything still waiting stays.

Also the nightly job that prunes every app's old records (`prune_old_records`).
"""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.tests.factories import SubscriptionFactory
from core import clock
from ledger.models import LedgerCheckRun
from notifications.models import (
    DeliveryStatus,
    EventDelivery,
    EventEndpoint,
    Notice,
    NoticeKind,
    NoticeStatus,
    OutboxEvent,
)
from notifications.services.events import event_publish
from notifications.services.retention import (
    event_deliveries_prune,
    notices_prune,
    notifications_retention_run,
    outbox_events_prune,
)
from notifications.tasks import prune_old_records
from payments.models import Payment, ReconciliationKind, ReconciliationRun, WebhookEvent, WebhookEventStatus
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db
D = DeliveryStatus
N = NoticeStatus


def days_ago(days: float):
    return clock.now() - timedelta(days=days)


@pytest.fixture
def endpoint() -> EventEndpoint:
    return EventEndpoint.objects.create(name="access service", url="https://access.example.com/events")


class Story:
    """The events of one subscription, numbered from 1, each with one delivery to one endpoint."""

    def __init__(self, endpoint, subscription=None):
        self.endpoint = endpoint
        self.subscription = subscription or SubscriptionFactory()

    def event(self, *, age_days, delivery=D.DELIVERED):
        """Record the subscription's next event `age_days` ago, delivered (or not) to the endpoint."""
        sequence = OutboxEvent.objects.filter(subscription=self.subscription).count() + 1
        event = OutboxEvent.objects.create(
            type="subscription.renewed",
            subscription=self.subscription,
            user_id=self.subscription.account.user_id,
            sequence=sequence,
            payload={},
            occurred_at=days_ago(age_days),
        )
        if delivery is not None:
            EventDelivery.objects.create(
                event=event,
                endpoint=self.endpoint,
                subscription=self.subscription,
                sequence=sequence,
                status=delivery,
                next_attempt_at=days_ago(age_days),
                created_at=days_ago(age_days),
                delivered_at=days_ago(age_days) if delivery == D.DELIVERED else None,
            )
        return event


def notice(status, *, age_days, reference=""):
    subscription = SubscriptionFactory()
    return Notice.objects.create(
        kind=NoticeKind.PAYMENT_SUCCEEDED,
        subscription=subscription,
        period_start=subscription.current_period_start,
        reference=reference,
        status=status,
        created_at=days_ago(age_days),
    )


def left(model) -> set:
    return set(model.objects.values_list("pk", flat=True))


class TestDeliveriesAndEvents:
    def test_old_delivered_events_go_with_their_deliveries(self, endpoint):
        story = Story(endpoint)
        first, second = story.event(age_days=120), story.event(age_days=100)
        last = story.event(age_days=95)

        assert event_deliveries_prune(before=days_ago(90), batch_size=100) == 3
        assert outbox_events_prune(before=days_ago(90), batch_size=100) == 2

        assert left(OutboxEvent) == {last.pk}
        assert not OutboxEvent.objects.filter(pk__in=[first.pk, second.pk]).exists()
        assert not EventDelivery.objects.exists()

    def test_a_delivery_still_pending_keeps_itself_and_its_event(self, endpoint):
        story = Story(endpoint)
        stuck = story.event(age_days=200, delivery=D.PENDING)
        story.event(age_days=1)

        assert event_deliveries_prune(before=days_ago(90), batch_size=100) == 0
        assert outbox_events_prune(before=days_ago(90), batch_size=100) == 0

        assert stuck.pk in left(OutboxEvent)
        assert EventDelivery.objects.get(event=stuck).status == D.PENDING

    def test_young_deliveries_and_events_stay(self, endpoint):
        story = Story(endpoint)
        young = [story.event(age_days=89), story.event(age_days=10)]

        assert notifications_retention_run(now=clock.now()) == {
            "event_deliveries": 0,
            "outbox_events": 0,
            "notices": 0,
        }
        assert left(OutboxEvent) == {event.pk for event in young}
        assert EventDelivery.objects.count() == 2

    def test_the_numbering_goes_on_after_the_last_event_of_a_subscription_was_kept(self, endpoint):
        story = Story(endpoint)
        for _ in range(3):
            story.event(age_days=300)

        notifications_retention_run(now=clock.now())
        assert [e.sequence for e in OutboxEvent.objects.filter(subscription=story.subscription)] == [3]

        with transaction.atomic():
            published = event_publish(
                type="subscription.renewed", subscription=story.subscription, payload={}
            )
        assert published.sequence == 4

    def test_batches_repeat_until_every_old_delivery_is_gone(self, endpoint):
        story = Story(endpoint)
        for _ in range(5):
            story.event(age_days=100)
        kept = story.event(age_days=100, delivery=D.PENDING)

        with CaptureQueriesContext(connection) as queries:
            assert event_deliveries_prune(before=days_ago(90), batch_size=2) == 5

        deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
        assert len(deletes) == 3  # 2 + 2 + 1, one transaction each
        assert list(EventDelivery.objects.values_list("event_id", flat=True)) == [kept.pk]


class TestNotices:
    def test_sent_and_skipped_notices_older_than_the_period_go(self):
        sent, skipped = notice(N.SENT, age_days=181), notice(N.SKIPPED, age_days=400)
        young = notice(N.SENT, age_days=179)
        waiting, failed = notice(N.PENDING, age_days=400), notice(N.FAILED, age_days=400)

        assert notices_prune(before=days_ago(180), batch_size=100) == 2

        assert left(Notice) == {young.pk, waiting.pk, failed.pk}
        assert not Notice.objects.filter(pk__in=[sent.pk, skipped.pk]).exists()

    def test_the_payment_a_pruned_receipt_was_about_stays(self):
        payment = PaymentFactory()
        receipt = Notice.objects.create(
            kind=NoticeKind.PAYMENT_SUCCEEDED,
            subscription=payment.subscription,
            period_start=payment.period_start,
            payment=payment,
            status=N.SENT,
            created_at=days_ago(365),
        )

        assert notifications_retention_run(now=clock.now())["notices"] == 1

        assert not Notice.objects.filter(pk=receipt.pk).exists()
        assert left(Payment) == {payment.pk}

    def test_batches_repeat_until_every_old_notice_is_gone(self):
        for n in range(5):
            notice(N.SENT, age_days=200, reference=str(n))

        assert notices_prune(before=days_ago(180), batch_size=2) == 5
        assert not Notice.objects.exists()


class TestTheNightlyJob:
    def test_it_runs_every_night_after_the_ledger_check(self):
        entry = django_settings.CELERY_BEAT_SCHEDULE["prune-old-records"]
        assert entry["task"] == prune_old_records.name
        assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})

    def test_it_prunes_the_old_records_of_every_app(self, endpoint):
        story = Story(endpoint)
        story.event(age_days=100)
        story.event(age_days=1)
        notice(N.SENT, age_days=200)
        WebhookEvent.objects.create(
            event_id="evt_old",
            type="charge.succeeded",
            provider_created_at=days_ago(100),
            payload={},
            status=WebhookEventStatus.PROCESSED,
            received_at=days_ago(100),
        )
        for age in (100, 1):
            ReconciliationRun.objects.create(
                kind=ReconciliationKind.EVENTS, started_at=days_ago(age), status="ok"
            )
        for age in (500, 1):
            LedgerCheckRun.objects.create(
                checked_at=days_ago(age), balanced=True, entries=0, unbalanced_entries=0, mismatch_count=0
            )

        assert prune_old_records.apply().get() == {
            "webhook_events": 1,
            "reconciliation_runs": 1,
            "event_deliveries": 1,
            "outbox_events": 1,
            "notices": 1,
            "ledger_check_runs": 1,
        }
        assert OutboxEvent.objects.count() == 1
        assert LedgerCheckRun.objects.count() == 1
