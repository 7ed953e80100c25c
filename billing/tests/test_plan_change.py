"""Viewers change plan: upgrades prorated to the minor unit on the billing clock, downgrades at the period end."""

# The fixtures imported from plan_change_setup are named again as test arguments, as pytest wants.
# ruff: noqa: F811

from datetime import UTC, datetime, timedelta

import pytest
from auditlog.models import LogEntry

from accounts.tests.roles import staff_member
from billing.models import PlanChange, Subscription, SubscriptionStatus
from billing.plan_change import round_half_up
from billing.services import subscription_extend
from billing.tests.plan_change_setup import (  # noqa: F401 (fixtures)
    PERIOD_END,
    PERIOD_START,
    basic_tariff,
    frozen_clock,
    in_known_period,
    premium_tariff,
    yearly_tariff,
)
from notifications.models import EventType, Notice, NoticeKind, OutboxEvent
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.services.renewals import RenewalOutcome, renewal_run
from tariffs.models import PromoDuration
from tariffs.tests.factories import PromoCodeFactory, TariffFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_provider")]
S = SubscriptionStatus
TEN_DAYS_IN = datetime(2027, 1, 11, tzinfo=UTC)  # 21 days = 1,814,400 s left of 2,678,400


def change(client, subscription: Subscription, tariff: str, *, preview: bool = False):
    body = {"tariff": tariff, "preview": preview}
    return client.post(f"/api/v1/subscriptions/{subscription.pk}/change/", body, format="json")


@pytest.fixture
def alice(viewer_client):
    return viewer_client("alice")


@pytest.fixture
def running(paid_subscription, frozen_clock):
    """Return a function: a paid monthly subscription (399.00) in January 2027, the clock stopped at `now`."""

    def make(now: datetime = TEN_DAYS_IN, card: str = "4242424242424242") -> Subscription:
        subscription = paid_subscription(card=card)
        frozen_clock(now)
        in_known_period(subscription)
        return subscription

    return make


def test_round_half_up_rounds_halves_up_and_the_rest_to_the_nearest():
    assert [round_half_up(5, 2), round_half_up(3, 2), round_half_up(7, 5), round_half_up(1, 4)] == [
        3,
        2,
        1,
        0,
    ]


class TestPreview:
    def test_same_length_upgrade_is_the_difference_for_the_seconds_left(self, running, premium_tariff, alice):
        subscription = running()
        answer = change(alice, subscription, "premium", preview=True)
        assert answer.status_code == 200
        # round((59900 - 39900) * 1814400 / 2678400) = round(13548.39)
        assert answer.json() == {
            "kind": "upgrade",
            "amount_due": 13548,
            "currency": "RUB",
            "effective_at": "2027-01-11T00:00:00Z",
            "new_period_end": "2027-02-01T00:00:00Z",
        }

    def test_preview_changes_nothing(self, running, yearly_tariff, alice, memory_provider):
        subscription = running()
        charges_before = len(memory_provider.charges())
        assert change(alice, subscription, "yearly", preview=True).status_code == 200
        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.tariff_id, fresh.amount, fresh.current_period_end) == (
            subscription.tariff_id,
            39900,
            PERIOD_END,
        )
        assert not Payment.objects.filter(kind=PaymentKind.CHANGE).exists()
        assert not PlanChange.objects.exists()
        assert len(memory_provider.charges()) == charges_before

    def test_downgrade_preview_is_free_and_takes_effect_at_the_period_end(self, running, basic_tariff, alice):
        subscription = running()
        assert change(alice, subscription, str(basic_tariff.pk), preview=True).json() == {
            "kind": "downgrade",
            "amount_due": 0,
            "currency": "RUB",
            "effective_at": "2027-02-01T00:00:00Z",
            "new_period_end": "2027-03-01T00:00:00Z",
        }


class TestUpgrade:
    def test_same_length_upgrade_charges_the_difference_and_keeps_the_period_end(
        self, running, premium_tariff, alice, memory_provider
    ):
        subscription = running()
        answer = change(alice, subscription, "premium")
        assert answer.status_code == 200, answer.json()
        body = answer.json()
        assert (body["status"], body["kind"], body["amount_due"]) == ("applied", "upgrade", 13548)
        assert body["subscription"]["tariff"]["slug"] == "premium"
        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.tariff_id, fresh.amount) == (premium_tariff.pk, 59900)
        assert (fresh.current_period_start, fresh.current_period_end) == (PERIOD_START, PERIOD_END)
        payment = Payment.objects.get(subscription=subscription, kind=PaymentKind.CHANGE)
        assert (payment.status, payment.amount, payment.currency) == (PaymentStatus.SUCCEEDED, 13548, "RUB")
        assert (payment.period_start, payment.period_end) == (TEN_DAYS_IN, PERIOD_END)
        keys = [key for operation, key in memory_provider.calls("charge_off_session")]
        assert keys == [
            f"change:{subscription.pk}:{subscription.tariff_id}:{premium_tariff.pk}"
            ":20270101T000000Z:20270201T000000Z:0:0"
        ]

    def test_monthly_to_yearly_starts_a_new_period_and_credits_the_unused_part(
        self, running, yearly_tariff, alice
    ):
        subscription = running()
        body = change(alice, subscription, "yearly").json()
        # 399000 - round(39900 * 1814400 / 2678400) = 399000 - round(27029.03)
        assert (body["status"], body["amount_due"]) == ("applied", 371971)
        assert body["new_period_end"] == "2028-01-11T00:00:00Z"
        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.tariff_id, fresh.amount) == (yearly_tariff.pk, 399000)
        assert (fresh.current_period_start, fresh.current_period_end, fresh.billing_anchor) == (
            TEN_DAYS_IN,
            datetime(2028, 1, 11, tzinfo=UTC),
            TEN_DAYS_IN,
        )
        payment = Payment.objects.get(subscription=subscription, kind=PaymentKind.CHANGE)
        assert (payment.amount, payment.period_start, payment.period_end) == (
            371971,
            TEN_DAYS_IN,
            datetime(2028, 1, 11, tzinfo=UTC),
        )

    def test_a_change_on_the_last_day(self, running, premium_tariff, yearly_tariff, alice):
        subscription = running(now=datetime(2027, 1, 31, 12, 0, tzinfo=UTC))  # 43,200 s left
        # round(20000 * 43200 / 2678400) = round(322.58)
        assert change(alice, subscription, "premium", preview=True).json()["amount_due"] == 323
        # 399000 - round(39900 * 43200 / 2678400) = 399000 - round(643.55)
        assert change(alice, subscription, "yearly", preview=True).json()["amount_due"] == 398356

    def test_a_change_after_a_goodwill_extension(self, running, premium_tariff, alice, frozen_clock):
        subscription = running(now=datetime(2027, 1, 5, tzinfo=UTC))
        subscription_extend(
            subscription=subscription, days=10, actor=staff_member("Support"), reason="outage"
        )
        frozen_clock(TEN_DAYS_IN)
        # The period is now 1 January to 11 February: 41 days, 31 of them left.
        # round(20000 * 2678400 / 3542400) = round(15121.95)
        body = change(alice, subscription, "premium").json()
        assert (body["amount_due"], body["new_period_end"]) == (15122, "2027-02-11T00:00:00Z")

    def test_an_upgrade_is_told_to_services_emailed_and_audited(self, running, premium_tariff, alice):
        subscription = running()
        change(alice, subscription, "premium")
        event = OutboxEvent.objects.get(subscription=subscription, type=EventType.SUBSCRIPTION_CHANGED)
        assert event.payload["kind"] == "upgrade"
        assert event.payload["previous_tariff"]["slug"] == "monthly"
        assert event.payload["subscription"]["tariff"]["slug"] == "premium"
        assert (event.payload["amount_due"], event.payload["effective_at"]) == (13548, "2027-01-11T00:00:00Z")
        notice = Notice.objects.get(subscription=subscription, kind=NoticeKind.SUBSCRIPTION_CHANGED)
        assert notice.context["tariff_name"] == "Premium"
        entry = LogEntry.objects.get(additional_data__action="subscription.change")
        assert entry.additional_data["requested_by"] == "viewer"
        assert entry.changes["tariff"] == ["monthly", "premium"]

    def test_a_percent_discount_carries_over_to_the_new_price(
        self, viewer_client, paid_subscription, frozen_clock, premium_tariff, monthly_tariff
    ):
        PromoCodeFactory(code="HALF", percent_off=50, duration=PromoDuration.FOREVER)
        client = viewer_client("bob")
        body = client.post(
            "/api/v1/subscriptions/", {"tariff": "monthly", "promo_code": "HALF"}, format="json"
        )
        assert body.status_code == 201, body.json()
        subscription = _pay_checkout(body.json())
        frozen_clock(TEN_DAYS_IN)
        in_known_period(subscription)
        # Pays 19950 now, 29950 on premium: round(10000 * 1814400 / 2678400) = round(6774.19)
        assert change(client, subscription, "premium", preview=True).json()["amount_due"] == 6774


def _pay_checkout(body: dict) -> Subscription:
    from payments.gateways import get_gateway
    from payments.gateways.memory import MemoryGateway
    from payments.models import CheckoutSession
    from payments.services.checkout import checkout_sync

    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    gateway = get_gateway()
    assert isinstance(gateway, MemoryGateway) and checkout.provider_session_id
    gateway.pay_checkout(checkout.provider_session_id, "4242424242424242")
    checkout_sync(provider_session_id=checkout.provider_session_id)
    return Subscription.objects.get(pk=checkout.subscription_id)


class TestTrial:
    def test_an_upgrade_during_a_trial_is_free_and_gives_no_second_trial(
        self, viewer_client, frozen_clock, premium_tariff
    ):
        trial = TariffFactory(slug="trial-monthly", name="Trial monthly", amount=39900, trial_days=7)
        client = viewer_client("carol")
        body = client.post("/api/v1/subscriptions/", {"tariff": trial.slug}, format="json").json()
        subscription = _pay_checkout(body)
        assert subscription.status == S.TRIALING
        trial_end = subscription.trial_end
        frozen_clock(subscription.current_period_start + timedelta(days=2))
        answer = change(client, subscription, "premium").json()
        assert (answer["status"], answer["amount_due"]) == ("applied", 0)
        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.status, fresh.tariff_id, fresh.amount) == (S.TRIALING, premium_tariff.pk, 59900)
        assert (fresh.trial_end, fresh.current_period_end) == (trial_end, trial_end)
        assert not Payment.objects.filter(kind=PaymentKind.CHANGE).exists()


class TestDowngrade:
    def test_scheduled_then_taken_by_the_renewal_at_the_new_price(
        self, running, basic_tariff, alice, frozen_clock
    ):
        subscription = running()
        answer = change(alice, subscription, "basic")
        assert answer.status_code == 200
        assert (answer.json()["status"], answer.json()["amount_due"]) == ("scheduled", 0)
        shown = alice.get(f"/api/v1/subscriptions/{subscription.pk}/").json()
        assert shown["tariff"]["slug"] == "monthly"
        assert shown["scheduled_change"] == {
            "tariff": {"id": basic_tariff.pk, "slug": "basic", "name": "Basic"},
            "effective_at": "2027-02-01T00:00:00Z",
        }
        frozen_clock(PERIOD_END + timedelta(minutes=1))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.tariff_id, fresh.amount, fresh.scheduled_tariff_id) == (basic_tariff.pk, 19900, None)
        assert (fresh.current_period_start, fresh.current_period_end) == (
            PERIOD_END,
            datetime(2027, 3, 1, tzinfo=UTC),
        )
        renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        assert (renewal.status, renewal.amount) == (PaymentStatus.SUCCEEDED, 19900)
        event = OutboxEvent.objects.get(subscription=subscription, type=EventType.SUBSCRIPTION_CHANGED)
        assert (event.payload["kind"], event.payload["previous_tariff"]["slug"]) == ("downgrade", "monthly")

    def test_withdrawn_with_delete(self, running, basic_tariff, alice, frozen_clock):
        subscription = running()
        change(alice, subscription, "basic")
        answer = alice.delete(f"/api/v1/subscriptions/{subscription.pk}/change/")
        assert answer.status_code == 200
        assert answer.json()["scheduled_change"] is None
        again = alice.delete(f"/api/v1/subscriptions/{subscription.pk}/change/")
        assert (again.status_code, again.json()["error"]["code"]) == (404, "no_scheduled_change")
        frozen_clock(PERIOD_END + timedelta(minutes=1))
        renewal_run(subscription_id=subscription.pk)
        renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        assert renewal.amount == 39900

    def test_follows_a_goodwill_extension(self, running, basic_tariff, alice):
        subscription = running()
        change(alice, subscription, "basic")
        subscription_extend(subscription=subscription, days=5, actor=staff_member("Support"), reason="outage")
        shown = alice.get(f"/api/v1/subscriptions/{subscription.pk}/").json()
        assert shown["scheduled_change"]["effective_at"] == "2027-02-06T00:00:00Z"

    def test_an_upgrade_drops_a_scheduled_downgrade(self, running, basic_tariff, premium_tariff, alice):
        subscription = running()
        change(alice, subscription, "basic")
        assert change(alice, subscription, "premium").json()["status"] == "applied"
        assert Subscription.objects.get(pk=subscription.pk).scheduled_tariff_id is None


class TestRefusals:
    def error(self, answer) -> tuple[int, str]:
        return answer.status_code, answer.json()["error"]["code"]

    def test_the_same_an_inactive_or_another_currency_tariff(self, running, alice):
        subscription = running()
        TariffFactory(slug="old", amount=99900, is_active=False)
        TariffFactory(slug="dollars", amount=999, currency="USD")
        assert self.error(change(alice, subscription, "monthly")) == (400, "tariff_unchanged")
        assert self.error(change(alice, subscription, "old")) == (400, "tariff_unavailable")
        assert self.error(change(alice, subscription, "dollars")) == (400, "tariff_currency_mismatch")
        assert self.error(change(alice, subscription, "nope")) == (400, "tariff_unavailable")

    def test_past_due_canceled_and_ended_subscriptions(self, running, premium_tariff, alice):
        subscription = running()
        Subscription.objects.filter(pk=subscription.pk).update(cancel_at_period_end=True)
        assert self.error(change(alice, subscription, "premium")) == (409, "subscription_ending")
        Subscription.objects.filter(pk=subscription.pk).update(cancel_at_period_end=False, status=S.PAST_DUE)
        assert self.error(change(alice, subscription, "premium")) == (409, "subscription_past_due")
        Subscription.objects.filter(pk=subscription.pk).update(status=S.EXPIRED)
        assert self.error(change(alice, subscription, "premium", preview=True)) == (409, "subscription_ended")

    def test_a_pending_subscription(self, viewer_client, monthly_tariff, premium_tariff):
        client = viewer_client("dave")
        body = client.post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json").json()
        subscription = Subscription.objects.get(pk=body["subscription"]["id"])
        assert self.error(change(client, subscription, "premium")) == (409, "subscription_pending")

    def test_another_viewers_subscription_and_unknown_fields(self, running, premium_tariff, viewer_client):
        subscription = running()
        assert self.error(change(viewer_client("mallory"), subscription, "premium")) == (404, "not_found")
        answer = viewer_client("alice").post(
            f"/api/v1/subscriptions/{subscription.pk}/change/",
            {"tariff": "premium", "amount": 1},
            format="json",
        )
        assert self.error(answer) == (400, "validation_error")
        assert Subscription.objects.get(pk=subscription.pk).tariff.slug == "monthly"


class TestSupport:
    def test_support_changes_a_plan_from_admin_with_a_confirmation_and_an_audit_entry(
        self, running, premium_tariff, client
    ):
        from django.contrib.auth.models import Permission

        subscription = running()
        agent = staff_member("Support", "agent")
        agent.user_permissions.add(Permission.objects.get(codename="change_subscription_plan"))
        client.force_login(agent)
        url = f"/admin/billing/subscription/{subscription.pk}/change-plan/"
        assert client.get(url).status_code == 200
        form = {"tariff": premium_tariff.pk, "reason": "asked by phone"}
        confirmation = client.post(url, form)
        assert confirmation.status_code == 200
        assert "135.48" in confirmation.content.decode()
        assert Subscription.objects.get(pk=subscription.pk).tariff.slug == "monthly"
        done = client.post(url, {**form, "confirm": "yes"})
        assert done.status_code == 302
        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.tariff_id, fresh.amount) == (premium_tariff.pk, 59900)
        entry = LogEntry.objects.get(additional_data__action="subscription.change")
        assert (entry.actor, entry.additional_data["reason"]) == (agent, "asked by phone")
        assert entry.additional_data["requested_by"] == "staff"

    def test_staff_without_the_permission_are_refused(self, running, client):
        subscription = running()
        client.force_login(staff_member("Accounting"))
        assert client.get(f"/admin/billing/subscription/{subscription.pk}/change-plan/").status_code == 403
