"""Viewers get each email once: recorded once by the database, sent once by the dispatcher."""

import importlib
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.tests.factories import SubscriptionFactory
from core import clock
from notifications.models import Notice, NoticeKind, NoticeStatus
from notifications.services.notices import (
    BACKOFF_FIRST,
    notice_record,
    notices_dispatch,
    notices_record_upcoming,
)
from payments.models import Payment, PaymentKind
from payments.services.action_links import action_link_url
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.concurrency import run_concurrently
from payments.tests.factories import ProviderCustomerFactory

K = NoticeKind
reference_migration = importlib.import_module("notifications.migrations.0003_ending_notice_reference")


def move_to(moment) -> None:
    clock.advance(max(moment - clock.now(), timedelta(0)))


def with_email(subscription, email: str = "alice@example.com"):
    subscription.account.email = email
    subscription.account.save()
    return subscription


def notices(kind: str) -> list[Notice]:
    return list(Notice.objects.filter(kind=kind).order_by("created_at"))


@pytest.mark.django_db
class TestRecordedOnce:
    def test_receipt_is_recorded_once_and_sent_once(self, paid_subscription):
        subscription = with_email(paid_subscription())
        (receipt,) = notices(K.PAYMENT_SUCCEEDED)

        again = notice_record(
            kind=K.PAYMENT_SUCCEEDED,
            subscription=subscription,
            period_start=receipt.period_start,
            context={},
        )
        assert again is False
        assert notices_dispatch() == 1
        assert notices_dispatch() == 0

        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["alice@example.com"]
        receipt.refresh_from_db()
        assert (receipt.status, receipt.attempts, receipt.to_email) == (
            NoticeStatus.SENT,
            1,
            "alice@example.com",
        )
        assert receipt.subject == mail.outbox[0].subject

    def test_declines_send_what_happens_next_and_the_last_one_the_end(
        self, paid_subscription, stripe_sandbox, settings
    ):
        settings.BILLING_RENEWAL_RETRY_DAYS = [1]
        subscription = with_email(paid_subscription(card="4000000000000341"))
        due = subscription.current_period_end
        move_to(due)
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
        notices_dispatch()
        move_to(due + timedelta(days=1))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
        notices_dispatch()

        (failed,) = notices(K.RENEWAL_FAILED)
        assert failed.context["next_retry_at"] == (due + timedelta(days=1)).isoformat().replace("+00:00", "Z")
        # A generic decline: the email says only that it was declined.
        assert (failed.context["failure_code"], failed.context["decline_reason"]) == (
            "generic_decline",
            "other",
        )
        assert failed.status == NoticeStatus.SENT
        (expired,) = notices(K.EXPIRED)
        assert (expired.context["reason"], expired.status) == ("payment_failed", NoticeStatus.SENT)
        assert [m.subject for m in mail.outbox][-2:] == [
            "We couldn't renew your Monthly subscription",
            "Your Monthly subscription has ended",
        ]

    def test_authentication_email_carries_the_payment_link(self, paid_subscription, stripe_sandbox):
        from django.test import TestCase

        subscription = with_email(paid_subscription(card="4000002760003184"))
        move_to(subscription.current_period_end)
        with TestCase.captureOnCommitCallbacks(execute=True):
            renewal_run(subscription_id=subscription.pk)
        notices_dispatch()

        payment = Payment.objects.get(kind=PaymentKind.RENEWAL)
        checkout = payment.checkout_sessions.get()
        (message,) = [m for m in mail.outbox if "Confirm" in m.subject]
        # Our durable link, not the provider's page, which dies after an hour
        # (payments/services/action_links.py); following it leads to that page.
        link = action_link_url(payment_id=payment.pk)
        assert link in message.body
        assert f'href="{link}"' in message.alternatives[0][0]
        assert checkout.url and checkout.url not in message.body
        assert Client().get(urlsplit(link).path)["Location"] == checkout.url


@pytest.mark.django_db(transaction=True)
def test_expiring_soon_job_run_twice_at_once_sends_one_email_per_subscription(settings):
    settings.NOTICE_EXPIRING_SOON_DAYS = 3
    now = clock.now()
    ending = [
        SubscriptionFactory(autopay=False, current_period_end=now + timedelta(days=2, hours=n))
        for n in range(6)
    ]
    SubscriptionFactory(autopay=True, current_period_end=now + timedelta(days=2))  # renews: no notice
    SubscriptionFactory(autopay=False, current_period_end=now + timedelta(days=5))  # not yet

    recorded = run_concurrently(lambda _: notices_record_upcoming(now=now), 2)
    sent = run_concurrently(lambda _: notices_dispatch(), 2)

    assert sum(recorded) == 6
    assert sum(sent) == 6
    assert sorted(m.to[0] for m in mail.outbox) == sorted(s.account.email for s in ending)
    assert Notice.objects.filter(kind=K.EXPIRING_SOON).count() == 6
    # The next runs of the job find them recorded already.
    assert notices_record_upcoming(now=now) == 0
    assert notices_dispatch() == 0
    assert len(mail.outbox) == 6


@pytest.mark.django_db
class TestUpcoming:
    def test_trial_ending_is_announced_with_the_coming_charge(self, settings):
        settings.NOTICE_EXPIRING_SOON_DAYS = 3
        now = clock.now()
        trial = SubscriptionFactory(status="trialing", current_period_end=now + timedelta(days=1))
        ProviderCustomerFactory(account=trial.account, card_brand="visa", card_last4="4242")

        assert notices_record_upcoming(now=now) == 1
        notices_dispatch()

        (notice,) = notices(K.TRIAL_ENDING)
        assert notice.context["will_renew"] is True
        assert "Visa •••• 4242" in mail.outbox[0].body

    def test_expiring_notice_is_not_sent_once_autopay_is_back_on(self, settings):
        now = clock.now()
        subscription = SubscriptionFactory(autopay=False, current_period_end=now + timedelta(days=1))
        notices_record_upcoming(now=now)
        subscription.autopay = True
        subscription.save()

        assert notices_dispatch() == 0

        (notice,) = notices(K.EXPIRING_SOON)
        assert notice.status == NoticeStatus.SKIPPED
        assert "renews" in notice.last_error
        assert mail.outbox == []

    def test_notices_recorded_before_the_upgrade_are_not_recorded_again(self):
        now = clock.now()
        subscription = SubscriptionFactory(autopay=False, current_period_end=now + timedelta(days=1))
        assert notices_record_upcoming(now=now) == 1
        # As the previous version recorded it: no reference.
        Notice.objects.filter(kind=K.EXPIRING_SOON).update(reference="")

        reference_migration.set_reference(django_apps, None)

        (notice,) = notices(K.EXPIRING_SOON)
        assert notice.reference == notice.context["period_end"]
        assert notices_record_upcoming(now=now) == 0
        assert Notice.objects.filter(subscription=subscription).count() == 1

    def test_account_without_email_is_skipped_visibly(self):
        subscription = SubscriptionFactory(account__email="", autopay=False)
        notices_record_upcoming(now=subscription.current_period_end - timedelta(days=1))

        notices_dispatch()

        (notice,) = notices(K.EXPIRING_SOON)
        assert (notice.status, notice.last_error) == (
            NoticeStatus.SKIPPED,
            "Not sent: the account has no email address.",
        )


@pytest.mark.django_db
class TestFailures:
    def test_failed_sends_are_retried_with_backoff_then_support_sends_again(
        self, settings, monkeypatch, client
    ):
        settings.NOTICE_MAX_ATTEMPTS = 3
        subscription = SubscriptionFactory(autopay=False)
        notices_record_upcoming(now=subscription.current_period_end - timedelta(days=1))

        def smtp_down(self, fail_silently=False):
            raise ConnectionRefusedError("SMTP server not reachable")

        monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", smtp_down)
        start = timezone.now()
        assert notices_dispatch(now=start) == 0
        (notice,) = notices(K.EXPIRING_SOON)
        assert (notice.status, notice.attempts, notice.next_attempt_at) == (
            NoticeStatus.PENDING,
            1,
            start + BACKOFF_FIRST,
        )
        assert "SMTP server not reachable" in notice.last_error
        assert notices_dispatch(now=start + BACKOFF_FIRST - timedelta(seconds=1)) == 0
        notice.refresh_from_db()
        assert notice.attempts == 1  # not due: not tried
        notices_dispatch(now=start + BACKOFF_FIRST)
        notices_dispatch(now=start + BACKOFF_FIRST * 3)
        notice.refresh_from_db()
        assert (notice.status, notice.attempts) == (NoticeStatus.FAILED, 3)
        assert notice.subject  # what it would have said is kept for support

        monkeypatch.undo()
        support = User.objects.create_user(username="support", is_staff=True)
        support.groups.add(Group.objects.get(name="Support"))
        client.force_login(support)
        response = client.post(
            reverse("admin:notifications_notice_changelist"),
            {"action": "send_again", "_selected_action": [str(notice.pk)]},
        )
        assert response.status_code == 302
        assert notices_dispatch() == 1
        notice.refresh_from_db()
        assert (notice.status, notice.attempts) == (NoticeStatus.SENT, 1)
        assert len(mail.outbox) == 1
