"""Every change publishes its events in its own transaction, numbered per subscription."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.test import TestCase

from billing.models import Subscription, SubscriptionStatus
from billing.services import subscription_cancel_now, subscription_expire
from billing.tests.factories import SubscriptionFactory
from core import clock
from notifications.models import EventDelivery, Notice, NoticeKind, OutboxEvent
from notifications.services.events import deliveries_dispatch, event_publish
from notifications.services.notices import notices_dispatch
from payments.gateways import get_gateway
from payments.gateways.base import RefundRequest
from payments.models import Payment, PaymentKind
from payments.services.renewals import RenewalOutcome, renewal_run, subscriptions_expire_due
from payments.tests.concurrency import run_concurrently
from payments.tests.test_checkout_settlement import deliver_sandbox_events

S = SubscriptionStatus


def move_to(moment) -> None:
    clock.advance(max(moment - clock.now(), timedelta(0)))


def events_of(subscription: Subscription) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(subscription=subscription).order_by("sequence"))


def types_of(subscription: Subscription) -> list[str]:
    return [event.type for event in events_of(subscription)]


def run_on_commit():
    # Tests run inside one transaction: run on_commit callbacks (opening the page) at once.
    return TestCase.captureOnCommitCallbacks(execute=True)


@pytest.mark.django_db
class TestEmitPoints:
    def test_first_payment_grants_access_and_reports_the_payment(self, paid_subscription):
        subscription = paid_subscription()

        events = events_of(subscription)
        assert [(e.type, e.sequence) for e in events] == [("access.granted", 1), ("payment.succeeded", 2)]
        granted, paid = (e.payload for e in events)
        assert all(e.user_id == "alice" for e in events)
        assert granted["previous_status"] == "pending"
        assert granted["subscription"]["status"] == "active"
        assert granted["subscription"]["tariff"]["slug"] == "monthly"
        assert paid["payment"]["amount"] == 39900
        assert paid["payment"]["currency"] == "RUB"
        assert paid["payment"]["kind"] == "initial"
        assert paid["payment"]["card"] == {"brand": "visa", "last4": "4242"}

    def test_renewal_reports_the_payment_then_the_new_period(self, paid_subscription, stripe_sandbox):
        subscription = paid_subscription()
        old_end = subscription.current_period_end
        move_to(old_end)

        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED

        subscription.refresh_from_db()
        assert types_of(subscription)[2:] == ["payment.succeeded", "subscription.renewed"]
        paid, renewed = (e.payload for e in events_of(subscription)[2:])
        assert paid["payment"]["kind"] == "renewal"
        assert paid["payment"]["period_start"] == old_end.isoformat().replace("+00:00", "Z")
        assert renewed["subscription"]["current_period_end"] == (
            subscription.current_period_end.isoformat().replace("+00:00", "Z")
        )

    def test_declines_report_each_failure_and_the_end_revokes_access(
        self, paid_subscription, stripe_sandbox, settings
    ):
        settings.BILLING_RENEWAL_RETRY_DAYS = [1, 3]
        subscription = paid_subscription(card="4000000000000341")
        due = subscription.current_period_end
        for day in (0, 1, 3):
            move_to(due + timedelta(days=day))
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED

        assert types_of(subscription)[2:] == [
            "payment.failed",
            "payment.failed",
            "access.revoked",
            "subscription.expired",
            "payment.failed",
        ]
        first_failure = events_of(subscription)[2].payload
        assert first_failure["next_retry_at"] == (due + timedelta(days=1)).isoformat().replace("+00:00", "Z")
        assert first_failure["payment"]["failure_code"]
        assert first_failure["action_required"] is False
        assert events_of(subscription)[-1].payload["next_retry_at"] is None
        assert events_of(subscription)[-3].payload["reason"] == "expired"

    def test_viewer_cancel_is_reported_once_and_the_period_end_revokes_access(
        self, paid_subscription, viewer_client
    ):
        subscription = paid_subscription()
        for _ in range(2):
            viewer_client("alice").post(f"/api/v1/subscriptions/{subscription.pk}/cancel/")

        canceled = events_of(subscription)[-1]
        assert types_of(subscription).count("subscription.canceled") == 1
        assert canceled.payload["at_period_end"] is True
        assert canceled.payload["access_until"] == (
            subscription.current_period_end.isoformat().replace("+00:00", "Z")
        )
        move_to(subscription.current_period_end)
        assert subscriptions_expire_due(now=clock.now()) == 1
        assert types_of(subscription)[-2:] == ["access.revoked", "subscription.expired"]

    def test_authentication_request_then_payment_on_the_link_restores_access(
        self, paid_subscription, stripe_sandbox, viewer_client
    ):
        subscription = paid_subscription(card="4000002760003184")
        move_to(subscription.current_period_end)
        with run_on_commit():
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.AUTHENTICATION_REQUIRED

        failed = events_of(subscription)[-1]
        assert (failed.type, failed.payload["action_required"]) == ("payment.failed", True)
        checkout = Payment.objects.get(kind=PaymentKind.RENEWAL).checkout_sessions.get()
        stripe_sandbox.pay(checkout.provider_session_id, "5555555555554444")
        viewer_client("alice").get(f"/api/v1/checkouts/{checkout.pk}/")

        assert types_of(subscription)[-3:] == ["access.granted", "subscription.renewed", "payment.succeeded"]
        assert events_of(subscription)[-3].payload["previous_status"] == "past_due"
        assert events_of(subscription)[-1].payload["payment"]["card"]["last4"] == "4444"

    def test_refunds_are_reported_with_each_amount(self, paid_subscription, stripe_sandbox, api_client):
        subscription = paid_subscription()
        payment = Payment.objects.get(subscription=subscription)
        for n, amount in enumerate((10000, 29900)):
            get_gateway().create_refund(
                RefundRequest(
                    payment_intent_id=payment.provider_payment_id or "",
                    amount=amount,
                    reason=None,
                    metadata={},
                    idempotency_key=f"dashboard-refund-{n}",
                )
            )
            deliver_sandbox_events(api_client, stripe_sandbox)

        refunds = [e.payload for e in events_of(subscription) if e.type == "payment.refunded"]
        assert [
            (r["refund"]["amount"], r["payment"]["refunded_amount"], r["payment"]["status"]) for r in refunds
        ] == [
            (10000, 10000, "partially_refunded"),
            (29900, 39900, "refunded"),
        ]
        assert Notice.objects.filter(kind=NoticeKind.REFUND_ISSUED, subscription=subscription).count() == 2

    def test_a_checkout_abandoned_before_payment_publishes_nothing(self):
        subscription = SubscriptionFactory(pending=True)
        subscription_cancel_now(subscription=subscription, at=clock.now())
        assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
class TestTransactions:
    def test_rolled_back_change_sends_no_email_and_no_event(self, endpoint, receiver, monkeypatch):
        nudged = []
        monkeypatch.setattr("notifications.services.events.nudge", lambda task: nudged.append(task.name))
        monkeypatch.setattr("notifications.services.notices.nudge", lambda task: nudged.append(task.name))
        subscription = SubscriptionFactory()

        with pytest.raises(RuntimeError), transaction.atomic():
            subscription_expire(subscription=subscription, at=clock.now())
            assert OutboxEvent.objects.count() == 2  # written, inside the transaction...
            assert Notice.objects.count() == 1
            raise RuntimeError("the change fails after the events were written")

        assert (OutboxEvent.objects.count(), EventDelivery.objects.count(), Notice.objects.count()) == (
            0,
            0,
            0,
        )
        assert nudged == []
        assert deliveries_dispatch() == 0
        assert notices_dispatch() == 0
        assert receiver.received == []
        assert mail.outbox == []

    def test_committed_change_is_delivered_and_emailed(self, endpoint, receiver):
        subscription = SubscriptionFactory()

        with transaction.atomic():
            subscription_expire(subscription=subscription, at=clock.now())

        assert deliveries_dispatch() == 2
        assert notices_dispatch() == 1
        assert [r.headers["Billing-Event-Type"] for r in receiver.received] == [
            "access.revoked",
            "subscription.expired",
        ]
        assert len(mail.outbox) == 1

    def test_sequence_numbers_have_no_gap_or_repeat_under_concurrent_changes(self):
        subscription = SubscriptionFactory()

        def publish(index: int) -> None:
            with transaction.atomic():
                event_publish(type="subscription.renewed", subscription=subscription, payload={"n": index})

        run_concurrently(publish, 8)

        assert sorted(OutboxEvent.objects.values_list("sequence", flat=True)) == list(range(1, 9))


@pytest.mark.django_db
def test_publishing_locks_the_subscriptions_row_and_never_its_account():
    # The account comes first in the lock order: locking it here, after the subscription, let
    # a cancel and a settlement of one viewer deadlock (tests/concurrency found it).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    subscription = SubscriptionFactory()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        event_publish(type="subscription.renewed", subscription=subscription, payload={})
    locking = [query["sql"] for query in queries.captured_queries if "FOR UPDATE" in query["sql"]]
    assert locking
    assert all(sql.endswith('FOR UPDATE OF "billing_subscription"') for sql in locking), locking


@pytest.mark.django_db
@pytest.mark.parametrize("configured_urls", [[], ["https://env-a.example/hook"]])
def test_the_written_out_endpoint_read_matches_the_orm_rule(settings, configured_urls):
    # Publishing reads the receiving endpoints with written-out SQL; every other reader uses
    # `_endpoint_filter`. Both must name the same endpoints, whatever is configured.
    from notifications.models import EndpointSource, EventEndpoint
    from notifications.services.events import _endpoint_filter, _endpoint_rows, configured_endpoints

    settings.EVENT_ENDPOINTS = [{"url": url, "secret": "s"} for url in configured_urls]
    EventEndpoint.objects.create(url="https://admin-on.example/hook", source=EndpointSource.ADMIN, secret="s")
    EventEndpoint.objects.create(
        url="https://admin-off.example/hook", source=EndpointSource.ADMIN, secret="s", active=False
    )
    for url in ("https://env-a.example/hook", "https://env-gone.example/hook"):
        EventEndpoint.objects.create(url=url, source=EndpointSource.ENVIRONMENT, secret="")
    configured = configured_endpoints()

    written_out = [endpoint.url for endpoint in _endpoint_rows(configured)]
    by_orm = list(
        EventEndpoint.objects.filter(_endpoint_filter(configured))
        .order_by("pk")
        .values_list("url", flat=True)
    )

    assert written_out == by_orm
    assert written_out == ["https://admin-on.example/hook", *configured_urls]
