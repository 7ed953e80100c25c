"""Notices and event deliveries fall due, retry and are sent on the billing clock.

The demo (and the tests) move the billing clock; the worker dispatching notices and
deliveries reads the same clock, so a retry falls due when the billing clock has moved past
its backoff, not when the real time has.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction

from billing.tests.factories import SubscriptionFactory
from core import clock
from notifications.models import DeliveryStatus, EventDelivery, Notice, NoticeKind, NoticeStatus
from notifications.services import events, notices
from notifications.services.events import deliveries_dispatch, event_publish
from notifications.services.notices import notices_dispatch, notices_record_upcoming

pytestmark = pytest.mark.django_db

A_MONTH_AND_MORE = timedelta(days=40)


def on_billing_time(moment, start) -> bool:
    return start <= moment <= clock.now()


def test_a_notice_recorded_after_the_clock_moved_is_retried_and_sent_on_billing_time(monkeypatch):
    moved_to = clock.advance(A_MONTH_AND_MORE)
    subscription = SubscriptionFactory(autopay=False, billing_anchor=moved_to - timedelta(days=1))
    notices_record_upcoming(now=subscription.current_period_end - timedelta(days=1))
    (notice,) = Notice.objects.filter(kind=NoticeKind.EXPIRING_SOON)
    assert on_billing_time(notice.created_at, moved_to)
    assert on_billing_time(notice.next_attempt_at, moved_to)

    def smtp_down(self, fail_silently=False):
        raise ConnectionRefusedError("SMTP server not reachable")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", smtp_down)
    assert notices_dispatch() == 0
    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == (NoticeStatus.PENDING, 1)
    assert notice.next_attempt_at >= moved_to + notices.BACKOFF_FIRST
    assert notices_dispatch() == 0
    notice.refresh_from_db()
    assert notice.attempts == 1  # not due yet: not tried again

    monkeypatch.undo()
    retried_at = clock.advance(notices.BACKOFF_FIRST)
    assert notices_dispatch() == 1

    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == (NoticeStatus.SENT, 2)
    assert on_billing_time(notice.sent_at, retried_at)
    assert len(mail.outbox) == 1


def test_a_delivery_published_after_the_clock_moved_is_retried_and_delivered_on_billing_time(
    endpoint, receiver
):
    moved_to = clock.advance(A_MONTH_AND_MORE)
    subscription = SubscriptionFactory(billing_anchor=moved_to)
    with transaction.atomic():
        event_publish(type="access.granted", subscription=subscription, payload={})
    (delivery,) = EventDelivery.objects.all()
    assert on_billing_time(delivery.created_at, moved_to)
    assert on_billing_time(delivery.next_attempt_at, moved_to)

    receiver.stop()  # down: connections are refused
    assert deliveries_dispatch() == 0
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert on_billing_time(delivery.last_attempt_at, moved_to)
    assert delivery.next_attempt_at >= moved_to + events.BACKOFF_FIRST

    receiver.start()
    retried_at = clock.advance(events.BACKOFF_FIRST)
    assert deliveries_dispatch() == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert on_billing_time(delivery.delivered_at, retried_at)
    assert len(receiver.received) == 1
