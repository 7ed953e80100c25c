"""A subscription moves only along the lifecycle; everything else is refused."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from accounts.tests.factories import BillingAccountFactory
from billing.models import Subscription, SubscriptionStatus
from billing.services import (
    ALLOWED_TRANSITIONS,
    subscription_cancel_now,
    subscription_create,
    subscription_expire,
    subscription_mark_past_due,
    subscription_start,
)
from billing.tests.factories import SubscriptionFactory
from core.errors import InvalidStatusTransition, LiveSubscriptionExists, TariffUnavailable
from tariffs.tests.factories import TariffFactory

S = SubscriptionStatus
pytestmark = pytest.mark.django_db
NOW = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)


def subscription_in(status):
    if status == S.PENDING:
        return SubscriptionFactory(pending=True)
    subscription = SubscriptionFactory(status=S.ACTIVE)
    Subscription.objects.filter(pk=subscription.pk).update(status=status)
    subscription.refresh_from_db()
    return subscription


class TestCreate:
    def test_new_subscription_is_pending_at_the_tariffs_current_price(self):
        tariff = TariffFactory(amount=49900, currency="USD")
        subscription = subscription_create(account=BillingAccountFactory(), tariff=tariff, autopay=False)
        assert (subscription.status, subscription.amount, subscription.currency) == (S.PENDING, 49900, "USD")
        assert subscription.autopay is False
        assert subscription.current_period_end is None

    def test_price_is_locked_when_the_tariff_changes_later(self):
        tariff = TariffFactory(amount=39900)
        subscription = subscription_create(account=BillingAccountFactory(), tariff=tariff)
        tariff.amount = 59900
        tariff.save()
        subscription.refresh_from_db()
        assert subscription.amount == 39900

    def test_inactive_tariff_is_refused(self):
        with pytest.raises(TariffUnavailable):
            subscription_create(account=BillingAccountFactory(), tariff=TariffFactory(is_active=False))
        assert Subscription.objects.count() == 0

    @pytest.mark.parametrize("live_status", [S.PENDING, S.TRIALING, S.ACTIVE, S.PAST_DUE])
    def test_second_live_subscription_is_refused(self, live_status):
        existing = subscription_in(live_status)
        with pytest.raises(LiveSubscriptionExists):
            subscription_create(account=existing.account, tariff=TariffFactory())
        assert Subscription.objects.filter(account=existing.account).count() == 1

    @pytest.mark.parametrize("ended_status", [S.CANCELED, S.EXPIRED])
    def test_a_viewer_whose_subscription_ended_can_subscribe_again(self, ended_status):
        ended = subscription_in(ended_status)
        again = subscription_create(account=ended.account, tariff=TariffFactory())
        assert again.status == S.PENDING

    def test_database_itself_refuses_a_second_live_subscription(self):
        existing = SubscriptionFactory(status=S.ACTIVE)
        with pytest.raises(IntegrityError), transaction.atomic():
            SubscriptionFactory(account=existing.account, status=S.PENDING, current_period_end=None)


class TestStart:
    def test_paid_subscription_becomes_active_for_one_period_from_payment(self):
        subscription = SubscriptionFactory(
            pending=True, tariff=TariffFactory(period_unit="month", period_count=1)
        )
        started = subscription_start(subscription=subscription, started_at=NOW)
        assert started.status == S.ACTIVE
        assert started.current_period_start == NOW
        assert started.current_period_end == datetime(2027, 2, 28, 12, 0, tzinfo=UTC)
        assert started.billing_anchor == NOW

    def test_trial_tariff_starts_trialing_until_trial_end(self):
        subscription = SubscriptionFactory(
            pending=True, tariff=TariffFactory(trial_days=7, period_unit="year")
        )
        started = subscription_start(subscription=subscription, started_at=NOW, trial_days=7)
        assert started.status == S.TRIALING
        assert started.current_period_end == NOW + timedelta(days=7)
        assert started.billing_anchor == NOW + timedelta(days=7)

    def test_starting_twice_is_refused_and_keeps_the_first_period(self):
        subscription = SubscriptionFactory(pending=True)
        subscription_start(subscription=subscription, started_at=NOW)
        with pytest.raises(InvalidStatusTransition):
            subscription_start(subscription=subscription, started_at=NOW + timedelta(days=3))
        subscription.refresh_from_db()
        assert subscription.current_period_start == NOW


class TestTransitions:
    MOVES = {
        S.PAST_DUE: lambda s: subscription_mark_past_due(subscription=s),
        S.CANCELED: lambda s: subscription_cancel_now(subscription=s, at=NOW),
        S.EXPIRED: lambda s: subscription_expire(subscription=s, at=NOW),
    }

    @pytest.mark.parametrize(
        ("source", "target"),
        # A second failure of a past-due one reschedules its retry: test_second_failure_moves_the_retry.
        [
            (s, t)
            for s in S.values
            for t in (S.PAST_DUE, S.CANCELED, S.EXPIRED)
            if (s, t) != (S.PAST_DUE, S.PAST_DUE)
        ],
    )
    def test_each_move_is_allowed_exactly_when_the_lifecycle_says_so(self, source, target):
        subscription = subscription_in(source)
        if target in ALLOWED_TRANSITIONS[source]:
            assert self.MOVES[target](subscription).status == target
        else:
            with pytest.raises(InvalidStatusTransition) as refused:
                self.MOVES[target](subscription)
            assert refused.value.details == {
                "subscription": str(subscription.pk),
                "from": source,
                "to": target,
            }
            subscription.refresh_from_db()
            assert subscription.status == source

    @pytest.mark.parametrize("final", [S.CANCELED, S.EXPIRED])
    def test_ended_subscriptions_cannot_come_back(self, final):
        assert ALLOWED_TRANSITIONS[final] == frozenset()
        with pytest.raises(InvalidStatusTransition):
            subscription_start(subscription=subscription_in(final), started_at=NOW)

    def test_second_failure_moves_the_retry(self):
        subscription = subscription_in(S.PAST_DUE)
        retry_at = NOW + timedelta(days=3)
        assert (
            subscription_mark_past_due(subscription=subscription, retry_at=retry_at).next_renewal_attempt_at
            == retry_at
        )

    def test_cancel_records_when_it_ended(self):
        canceled = subscription_cancel_now(subscription=subscription_in(S.ACTIVE), at=NOW)
        assert (canceled.canceled_at, canceled.ended_at) == (NOW, NOW)

    def test_stale_instance_cannot_overwrite_a_newer_status(self):
        subscription = subscription_in(S.ACTIVE)
        stale_copy = Subscription.objects.get(pk=subscription.pk)
        subscription_expire(subscription=subscription, at=NOW)
        # The stale copy still says "active", but the service re-reads the row under lock.
        with pytest.raises(InvalidStatusTransition):
            subscription_mark_past_due(subscription=stale_copy)
