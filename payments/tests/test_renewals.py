"""Renewals charge the saved card once per period, at the locked price, anchored to the calendar."""

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import SubscriptionStatus
from billing.periods import add_months
from core import clock
from ledger.models import JournalEntry
from notifications.models import Notice, NoticeKind, OutboxEvent
from payments.models import Payment, PaymentKind, PaymentStatus, ProviderCustomer
from payments.services.renewals import RenewalOutcome, renewal_run, renewals_due, subscriptions_expire_due

pytestmark = pytest.mark.django_db
S = SubscriptionStatus
CHARGES = "/v1/payment_intents"


def move_to(moment: datetime) -> None:
    """Move the billing clock so that it reads `moment` (never backwards)."""
    clock.advance(max(moment - clock.now(), timedelta(0)))


def off_session_charges(sandbox) -> list[dict]:
    return sandbox.requests(method="POST", path=CHARGES)


def access(viewer_client, user_id: str = "alice") -> bool:
    return viewer_client(user_id).get("/api/v1/access/").json()["has_access"]


class TestRenewal:
    def test_due_subscription_is_charged_once_and_extended_by_exactly_one_period(
        self, paid_subscription, stripe_sandbox
    ):
        subscription = paid_subscription()
        old_end = subscription.current_period_end
        move_to(old_end + timedelta(minutes=1))
        assert renewals_due(now=clock.now(), limit=10) == [subscription.pk]

        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        subscription.refresh_from_db()
        assert subscription.status == S.ACTIVE
        assert subscription.current_period_start == old_end
        assert subscription.current_period_end == add_months(subscription.billing_anchor, 2)
        renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        assert (renewal.status, renewal.amount, renewal.currency) == (PaymentStatus.SUCCEEDED, 39900, "RUB")
        assert (renewal.period_start, renewal.period_end) == (old_end, subscription.current_period_end)
        assert renewal.card_last4 == "4242"

        # Running it again (a duplicate task, the next beat) charges nothing more.
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.NOT_DUE
        charges = off_session_charges(stripe_sandbox)
        assert len(charges) == 1
        assert charges[0]["idempotency_key"] == f"renewal:{subscription.pk}:{old_end:%Y%m%dT%H%M%SZ}:0"

    def test_renewal_charges_the_price_locked_at_signup(
        self, paid_subscription, stripe_sandbox, monthly_tariff
    ):
        subscription = paid_subscription()
        monthly_tariff.amount = 59900
        monthly_tariff.save()
        move_to(subscription.current_period_end + timedelta(minutes=1))
        renewal_run(subscription_id=subscription.pk)
        intent = stripe_sandbox.objects("payment_intent")[-1]
        assert intent["amount"] == 39900
        assert Payment.objects.get(kind=PaymentKind.RENEWAL).amount == 39900

    def test_not_due_before_the_period_ends(self, paid_subscription, stripe_sandbox):
        subscription = paid_subscription()
        move_to(subscription.current_period_end - timedelta(minutes=1))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.NOT_DUE
        assert off_session_charges(stripe_sandbox) == []

    def test_twenty_four_monthly_renewals_from_31_january_stay_on_month_ends(
        self, paid_subscription, stripe_sandbox
    ):
        subscription = paid_subscription()
        anchor = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)
        first_end = datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
        type(subscription).objects.filter(pk=subscription.pk).update(
            billing_anchor=anchor, current_period_start=anchor, current_period_end=first_end
        )
        ends = []
        for _ in range(24):
            subscription.refresh_from_db()
            move_to(subscription.current_period_end)
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
            subscription.refresh_from_db()
            ends.append(subscription.current_period_end)
        assert all(end.day == calendar.monthrange(end.year, end.month)[1] for end in ends)
        assert ends[-1] == datetime(2029, 2, 28, 9, 0, tzinfo=UTC)
        assert Payment.objects.filter(kind=PaymentKind.RENEWAL, status=PaymentStatus.SUCCEEDED).count() == 24
        assert len(off_session_charges(stripe_sandbox)) == 24


class TestWhatARenewalCosts:
    def test_the_subscription_is_read_once_and_its_news_still_told_in_order(
        self, paid_subscription, stripe_sandbox
    ):
        # A renewal locks its subscription at the start and hands that row down: each further
        # read of it would cost every renewal, at a hundred a second (docs/benchmarks.md).
        subscription = paid_subscription()
        move_to(subscription.current_period_end + timedelta(minutes=1))
        published_before = OutboxEvent.objects.filter(subscription=subscription).count()

        with CaptureQueriesContext(connection) as queries:
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED

        statements = [query["sql"] for query in queries.captured_queries]
        subscription_reads = [sql for sql in statements if '"billing_subscription"."tariff_id"' in sql]
        assert len(subscription_reads) == 1 and "FOR UPDATE" in subscription_reads[0]
        # The renewal's own transaction (a savepoint inside the test's), and no other.
        assert len([sql for sql in statements if sql.startswith("SAVEPOINT")]) == 1
        told = OutboxEvent.objects.filter(subscription=subscription).order_by("sequence")[published_before:]
        assert [(event.type, event.sequence) for event in told] == [
            ("payment.succeeded", published_before + 1),
            ("subscription.renewed", published_before + 2),
        ]
        renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        assert Notice.objects.filter(payment=renewal, kind=NoticeKind.PAYMENT_SUCCEEDED).count() == 1
        assert JournalEntry.objects.filter(source=f"payment:{renewal.pk}").count() == 1


class TestDunning:
    def test_card_0341_fails_retries_on_schedule_then_expires(
        self, paid_subscription, stripe_sandbox, viewer_client, settings
    ):
        settings.BILLING_GRACE_PERIOD = timedelta(days=3)
        settings.BILLING_RENEWAL_RETRY_DAYS = [1, 3, 5]
        subscription = paid_subscription(card="4000000000000341")
        due = subscription.current_period_end
        move_to(due)
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
        subscription.refresh_from_db()
        assert subscription.status == S.PAST_DUE
        assert subscription.next_renewal_attempt_at == due + timedelta(days=1)
        assert access(viewer_client) is True  # within the grace period

        for retry_day, next_retry in ((1, 3), (3, 5)):
            move_to(due + timedelta(days=retry_day) - timedelta(minutes=1))
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.NOT_DUE
            move_to(due + timedelta(days=retry_day))
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
            subscription.refresh_from_db()
            assert subscription.next_renewal_attempt_at == due + timedelta(days=next_retry)
            assert access(viewer_client) is (retry_day < 3)  # grace ends on day 3

        move_to(due + timedelta(days=5))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
        subscription.refresh_from_db()
        assert subscription.status == S.EXPIRED
        assert access(viewer_client) is False
        payment = Payment.objects.get(kind=PaymentKind.RENEWAL)
        assert (payment.status, payment.failed_attempts) == (PaymentStatus.FAILED, 4)
        keys = [r["idempotency_key"] for r in off_session_charges(stripe_sandbox)]
        assert keys == [f"renewal:{subscription.pk}:{due:%Y%m%dT%H%M%SZ}:{n}" for n in range(4)]

    def test_hard_decline_is_not_retried_and_ends_after_grace(
        self, paid_subscription, stripe_sandbox, viewer_client, settings
    ):
        settings.BILLING_GRACE_PERIOD = timedelta(days=3)
        subscription = paid_subscription()
        # The card was removed: nothing to charge.
        ProviderCustomer.objects.filter(account=subscription.account).update(payment_method_ref="")
        due = subscription.current_period_end
        move_to(due)
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
        subscription.refresh_from_db()
        assert (subscription.status, subscription.next_renewal_attempt_at) == (S.PAST_DUE, None)
        move_to(due + timedelta(days=3, minutes=1))
        assert subscriptions_expire_due(now=clock.now()) == 1
        subscription.refresh_from_db()
        assert subscription.status == S.EXPIRED
        assert off_session_charges(stripe_sandbox) == []

    def test_card_3184_sends_the_viewer_a_working_link_that_restores_active(
        self, paid_subscription, stripe_sandbox, viewer_client
    ):
        subscription = paid_subscription(card="4000002760003184")
        move_to(subscription.current_period_end)
        with self.captured_on_commit():
            outcome = renewal_run(subscription_id=subscription.pk)
        assert outcome == RenewalOutcome.AUTHENTICATION_REQUIRED
        detail = viewer_client("alice").get(f"/api/v1/subscriptions/{subscription.pk}/").json()
        assert detail["status"] == "past_due"
        link = detail["payment_action_url"]
        # Our durable link (payments/services/action_links.py), which leads to the provider's page.
        assert link and link.startswith("http://testserver/pay/")
        page = viewer_client("alice").get(link)
        assert page.status_code == 302
        assert page["Location"].startswith(stripe_sandbox.base.removesuffix("/_sandbox"))
        payment = Payment.objects.get(kind=PaymentKind.RENEWAL)
        checkout = payment.checkout_sessions.get()
        assert checkout.url == page["Location"]
        # The viewer pays that exact renewal with another card, which becomes the saved one.
        stripe_sandbox.pay(checkout.provider_session_id, "5555555555554444")
        viewer_client("alice").get(f"/api/v1/checkouts/{checkout.pk}/")
        subscription.refresh_from_db()
        payment.refresh_from_db()
        assert subscription.status == S.ACTIVE
        assert subscription.current_period_start == payment.period_start
        assert payment.status == PaymentStatus.SUCCEEDED
        assert ProviderCustomer.objects.get(account_id=subscription.account_id).card_last4 == "4444"
        assert access(viewer_client) is True

    @staticmethod
    def captured_on_commit():
        # Tests run inside one transaction: run on_commit callbacks (opening the page) at once.
        from django.test import TestCase

        return TestCase.captureOnCommitCallbacks(execute=True)


class TestCancelAutopayTrial:
    def test_cancel_after_the_job_picked_it_but_before_the_charge_charges_nothing(
        self, paid_subscription, stripe_sandbox, viewer_client
    ):
        subscription = paid_subscription()
        move_to(subscription.current_period_end)
        picked = renewals_due(now=clock.now(), limit=10)  # the beat job's pick
        assert picked == [subscription.pk]
        response = viewer_client("alice").post(f"/api/v1/subscriptions/{subscription.pk}/cancel/")
        assert response.status_code == 200
        assert response.json()["cancel_at_period_end"] is True
        assert renewal_run(subscription_id=picked[0]) == RenewalOutcome.NOT_DUE
        assert off_session_charges(stripe_sandbox) == []
        assert subscriptions_expire_due(now=clock.now()) == 1
        subscription.refresh_from_db()
        assert subscription.status == S.EXPIRED

    def test_canceled_subscription_keeps_access_to_the_period_end_and_can_resume(
        self, paid_subscription, viewer_client
    ):
        subscription = paid_subscription()
        client = viewer_client("alice")
        client.post(f"/api/v1/subscriptions/{subscription.pk}/cancel/")
        assert access(viewer_client) is True
        resumed = client.post(f"/api/v1/subscriptions/{subscription.pk}/resume/")
        assert resumed.status_code == 200
        assert resumed.json()["cancel_at_period_end"] is False
        move_to(subscription.current_period_end + timedelta(seconds=1))
        again = client.post(f"/api/v1/subscriptions/{subscription.pk}/resume/")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "cannot_resume"

    def test_autopay_off_ends_at_period_end_without_a_charge(
        self, paid_subscription, stripe_sandbox, viewer_client
    ):
        subscription = paid_subscription()
        response = viewer_client("alice").post(
            f"/api/v1/subscriptions/{subscription.pk}/autopay/", {"enabled": False}, format="json"
        )
        assert response.json()["autopay"] is False
        move_to(subscription.current_period_end)
        assert renewals_due(now=clock.now(), limit=10) == []
        assert subscriptions_expire_due(now=clock.now()) == 1
        assert off_session_charges(stripe_sandbox) == []
        assert access(viewer_client) is False

    def test_another_viewers_subscription_cannot_be_canceled(self, paid_subscription, viewer_client):
        subscription = paid_subscription()
        response = viewer_client("mallory").post(f"/api/v1/subscriptions/{subscription.pk}/cancel/")
        assert response.status_code == 404
        subscription.refresh_from_db()
        assert subscription.cancel_at_period_end is False

    def test_trial_saves_the_card_and_charges_first_at_trial_end(
        self, paid_subscription, stripe_sandbox, viewer_client
    ):
        from tariffs.tests.factories import TariffFactory

        TariffFactory(slug="yearly", amount=399000, currency="RUB", period_unit="year", trial_days=7)
        subscription = paid_subscription(tariff="yearly")
        assert subscription.status == S.TRIALING
        assert subscription.current_period_end == subscription.trial_end
        assert not Payment.objects.filter(subscription=subscription, status=PaymentStatus.SUCCEEDED).exists()
        assert stripe_sandbox.objects("payment_intent") == []
        assert access(viewer_client) is True
        move_to(subscription.trial_end)
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        subscription.refresh_from_db()
        assert subscription.status == S.ACTIVE
        first_charge = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        assert (first_charge.amount, first_charge.period_start) == (399000, subscription.trial_end)
        assert subscription.current_period_end == subscription.trial_end.replace(
            year=subscription.trial_end.year + 1
        )

    def test_one_trial_per_account(self, paid_subscription, viewer_client, stripe_sandbox):
        from tariffs.tests.factories import TariffFactory

        TariffFactory(slug="yearly", amount=399000, currency="RUB", period_unit="year", trial_days=7)
        first = paid_subscription(tariff="yearly")
        viewer_client("alice").post(f"/api/v1/subscriptions/{first.pk}/cancel/")
        move_to(first.current_period_end)
        subscriptions_expire_due(now=clock.now())
        again = (
            viewer_client("alice").post("/api/v1/subscriptions/", {"tariff": "yearly"}, format="json").json()
        )
        assert again["checkout"]["mode"] == "payment"
        assert again["payment"]["amount"] == 399000


class TestBillingClockCommand:
    def test_billing_advance_runs_renewals_as_days_pass(self, paid_subscription, stripe_sandbox, capsys):
        subscription = paid_subscription()
        days = (subscription.current_period_end - clock.now()).days + 1
        call_command("billing_advance", "--days", str(days))
        assert "renewed: 1" in capsys.readouterr().out
        subscription.refresh_from_db()
        assert subscription.current_period_start is not None
        assert Payment.objects.filter(kind=PaymentKind.RENEWAL, status=PaymentStatus.SUCCEEDED).count() == 1

    def test_billing_advance_is_refused_under_production_settings(self, settings):
        settings.BILLING_PRODUCTION = True
        with pytest.raises(CommandError, match="production"):
            call_command("billing_advance", "--days", "1")
