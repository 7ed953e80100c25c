"""Support gives a viewer free days: the period ends later, and the next charge happens then."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.urls import reverse

from accounts.tests.roles import staff_member
from billing.models import Subscription, SubscriptionStatus
from billing.pricing import amount_for_period
from billing.services import (
    ExtensionInvalid,
    RenewalUnderWay,
    SubscriptionChanged,
    SubscriptionNotExtendable,
    SubscriptionPastDue,
    subscription_extend,
)
from billing.tests.factories import SubscriptionFactory
from core import clock
from notifications.models import EventType, Notice, NoticeKind, NoticeStatus, OutboxEvent
from notifications.payloads import iso
from notifications.services.notices import notice_send, notices_record_upcoming
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.services.renewals import RenewalOutcome, renewal_run
from tariffs.models import PeriodUnit, PromoRedemption
from tariffs.tests.factories import PromoCodeFactory, TariffFactory

# The provider only sets the scene: the in-memory one (billing/tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_provider")]
S = SubscriptionStatus


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=UTC)


def move_to(moment: datetime) -> None:
    """Move the billing clock so that it reads `moment` (never backwards)."""
    clock.advance(max(moment - clock.now(), timedelta(0)))


def set_period(subscription: Subscription, *, anchor: datetime, start: datetime, end: datetime) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(
        billing_anchor=anchor, current_period_start=start, current_period_end=end
    )
    subscription.refresh_from_db()


def extend(
    subscription: Subscription, days: int = 10, reason: str = "Cinema outage on 3 March"
) -> Subscription:
    return subscription_extend(
        subscription=subscription, days=days, actor=staff_member("Support", "agent"), reason=reason
    )


class TestExtension:
    def test_period_end_moves_and_the_next_charge_happens_at_the_new_end(
        self, paid_subscription, viewer_client
    ):
        subscription = paid_subscription()
        set_period(subscription, anchor=at(2027, 1, 10), start=at(2027, 1, 10), end=at(2027, 2, 10))

        extended = extend(subscription, days=10)

        assert extended.current_period_end == at(2027, 2, 20)
        # Access holds through the old end, and nothing is charged there.
        move_to(at(2027, 2, 10) + timedelta(hours=1))
        assert viewer_client("alice").get("/api/v1/access/").json()["has_access"] is True
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.NOT_DUE
        assert not Payment.objects.filter(kind=PaymentKind.RENEWAL).exists()

        move_to(at(2027, 2, 20))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        subscription.refresh_from_db()
        # One whole month from the new end, and the month after that too.
        assert (subscription.current_period_start, subscription.current_period_end) == (
            at(2027, 2, 20),
            at(2027, 3, 20),
        )
        renewal = Payment.objects.get(kind=PaymentKind.RENEWAL)
        assert (renewal.status, renewal.amount) == (PaymentStatus.SUCCEEDED, 39900)
        assert (renewal.period_start, renewal.period_end) == (at(2027, 2, 20), at(2027, 3, 20))
        move_to(at(2027, 3, 20))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        subscription.refresh_from_db()
        assert subscription.current_period_end == at(2027, 4, 20)

    def test_month_end_subscriber_renews_a_whole_month_after_the_new_end(self, paid_subscription):
        subscription = paid_subscription()
        set_period(subscription, anchor=at(2027, 1, 31), start=at(2027, 2, 28), end=at(2027, 3, 31))

        extended = extend(subscription, days=1)

        assert extended.current_period_end == at(2027, 4, 1)
        move_to(at(2027, 4, 1))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        subscription.refresh_from_db()
        assert (subscription.current_period_start, subscription.current_period_end) == (
            at(2027, 4, 1),
            at(2027, 5, 1),
        )

    def test_yearly_period_extended_to_29_february_renews_on_the_last_day_of_february(
        self, paid_subscription
    ):
        TariffFactory(slug="yearly", period_unit=PeriodUnit.YEAR, amount=399000)
        subscription = paid_subscription(tariff="yearly")
        set_period(subscription, anchor=at(2027, 1, 31), start=at(2027, 1, 31), end=at(2028, 1, 31))

        extended = extend(subscription, days=29)

        assert extended.current_period_end == at(2028, 2, 29)
        move_to(at(2028, 2, 29))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        subscription.refresh_from_db()
        assert (subscription.current_period_start, subscription.current_period_end) == (
            at(2028, 2, 29),
            at(2029, 2, 28),
        )

    def test_trial_ends_later_and_the_first_charge_moves_with_it(self, monthly_tariff):
        subscription = SubscriptionFactory(tariff=monthly_tariff, status=S.TRIALING)
        Subscription.objects.filter(pk=subscription.pk).update(
            trial_end=at(2027, 1, 10),
            billing_anchor=at(2027, 1, 10),
            current_period_start=at(2027, 1, 3),
            current_period_end=at(2027, 1, 10),
        )
        subscription.refresh_from_db()

        extended = extend(subscription, days=7)

        assert (
            extended.status,
            extended.trial_end,
            extended.current_period_end,
            extended.billing_anchor,
        ) == (
            S.TRIALING,
            at(2027, 1, 17),
            at(2027, 1, 17),
            at(2027, 1, 17),
        )

    def test_a_first_period_promo_is_not_given_again_after_an_extension(self, monthly_tariff):
        subscription = SubscriptionFactory(tariff=monthly_tariff)
        set_period(subscription, anchor=at(2027, 1, 10), start=at(2027, 1, 10), end=at(2027, 2, 10))
        PromoRedemption.objects.create(
            promo=PromoCodeFactory(),
            account=subscription.account,
            subscription=subscription,
            kind="percent",
            value=15,
            periods=1,
        )

        extended = extend(subscription, days=10)

        assert amount_for_period(subscription=extended, period_start=extended.current_period_end) == 39900

    def test_canceled_at_period_end_subscription_keeps_access_to_the_new_end(self, monthly_tariff):
        subscription = SubscriptionFactory(tariff=monthly_tariff, cancel_at_period_end=True)
        old_end = subscription.current_period_end

        extended = extend(subscription, days=5)

        assert extended.current_period_end == old_end + timedelta(days=5)
        assert extended.cancel_at_period_end is True


class TestWhoIsTold:
    def test_the_cinemas_services_are_told_of_the_new_period_end(self, monthly_tariff):
        subscription = SubscriptionFactory(tariff=monthly_tariff, status=S.ACTIVE)
        old_end = subscription.current_period_end

        extended = extend(subscription, days=7)

        event = OutboxEvent.objects.get(subscription=subscription, type=EventType.SUBSCRIPTION_EXTENDED)
        assert event.payload["days"] == 7
        assert event.payload["previous_period_end"] == iso(old_end)
        assert event.payload["subscription"]["current_period_end"] == iso(extended.current_period_end)

    def test_an_ending_soon_email_for_the_old_end_is_not_sent_and_one_for_the_new_end_is(
        self, monthly_tariff
    ):
        subscription = SubscriptionFactory(tariff=monthly_tariff, status=S.ACTIVE, autopay=False)
        move_to(subscription.current_period_end - timedelta(days=1))
        assert notices_record_upcoming(now=clock.now()) == 1
        stale = Notice.objects.get(subscription=subscription, kind=NoticeKind.EXPIRING_SOON)

        extended = extend(subscription, days=3)
        notice_send(notice_id=stale.pk)

        stale.refresh_from_db()
        assert stale.status == NoticeStatus.SKIPPED
        assert not mail.outbox
        # Nearing the new end, the viewer is told of it.
        move_to(extended.current_period_end - timedelta(days=1))
        assert notices_record_upcoming(now=clock.now()) == 1
        fresh = Notice.objects.exclude(pk=stale.pk).get(subscription=subscription)
        assert fresh.context["period_end"] == iso(extended.current_period_end)
        assert notice_send(notice_id=fresh.pk) == NoticeStatus.SENT
        assert len(mail.outbox) == 1


class TestRefusals:
    @pytest.mark.parametrize("days", [0, -3, 366])
    def test_days_must_be_1_to_365(self, days):
        subscription = SubscriptionFactory()
        end = subscription.current_period_end

        with pytest.raises(ExtensionInvalid) as refused:
            extend(subscription, days=days)

        assert "1 to 365 days" in refused.value.message
        subscription.refresh_from_db()
        assert subscription.current_period_end == end

    def test_a_reason_is_required(self):
        with pytest.raises(ExtensionInvalid):
            extend(SubscriptionFactory(), reason="   ")

    @pytest.mark.parametrize("status", [S.CANCELED, S.EXPIRED])
    def test_ended_subscription_is_refused(self, status):
        subscription = SubscriptionFactory(status=status)

        with pytest.raises(SubscriptionNotExtendable) as refused:
            extend(subscription)

        assert refused.value.code == "subscription_not_extendable"

    def test_pending_subscription_is_refused(self):
        with pytest.raises(SubscriptionNotExtendable):
            extend(SubscriptionFactory(pending=True))

    def test_past_due_subscription_is_refused_with_why(self):
        subscription = SubscriptionFactory(status=S.PAST_DUE)

        with pytest.raises(SubscriptionPastDue) as refused:
            extend(subscription)

        assert "renewal is being retried" in refused.value.message

    def test_period_already_over_is_refused_while_its_renewal_is_under_way(self):
        subscription = SubscriptionFactory()
        move_to(subscription.current_period_end + timedelta(minutes=5))

        with pytest.raises(RenewalUnderWay):
            extend(subscription)

    def test_a_second_submission_of_the_same_form_does_not_extend_twice(self):
        subscription = SubscriptionFactory()
        shown_end = subscription.current_period_end
        agent = staff_member("Support", "agent")
        subscription_extend(
            subscription=subscription, days=3, actor=agent, reason="outage", expected_period_end=shown_end
        )

        with pytest.raises(SubscriptionChanged):
            subscription_extend(
                subscription=subscription, days=3, actor=agent, reason="outage", expected_period_end=shown_end
            )

        subscription.refresh_from_db()
        assert subscription.current_period_end == shown_end + timedelta(days=3)


def extend_url(subscription: Subscription) -> str:
    return reverse("admin:billing_subscription_extend", args=[subscription.pk])


def change_url(subscription: Subscription) -> str:
    return reverse("admin:billing_subscription_change", args=[subscription.pk])


class TestAdmin:
    def test_support_extends_from_the_subscription_page_after_a_confirmation(self, client):
        subscription = SubscriptionFactory()
        set_period(subscription, anchor=at(2027, 1, 10), start=at(2027, 1, 10), end=at(2027, 2, 10))
        client.force_login(staff_member("Support"))

        page = client.get(change_url(subscription)).content.decode()
        assert extend_url(subscription) in page
        assert "Extend (goodwill)" in page

        form = client.get(extend_url(subscription))
        assert form.status_code == 200
        data = {
            "days": "10",
            "reason": "Cinema outage on 3 March",
            "period_end": form.context["form"].initial["period_end"],
        }
        confirmation = client.post(extend_url(subscription), data)
        content = confirmation.content.decode()
        assert "Please confirm" in content
        assert "Add 10 days to the current period" in content
        assert "The next charge happens then" in content
        subscription.refresh_from_db()
        assert subscription.current_period_end == at(2027, 2, 10)

        done = client.post(extend_url(subscription), {**data, "confirm": "yes"}, follow=True)

        assert done.redirect_chain[-1][0] == change_url(subscription)
        assert "Extended by 10 days as goodwill" in done.content.decode()
        subscription.refresh_from_db()
        assert subscription.current_period_end == at(2027, 2, 20)

        # The same form sent again is refused, not a second extension.
        again = client.post(extend_url(subscription), {**data, "confirm": "yes"})
        assert "period end has changed since the form was shown" in again.content.decode()
        subscription.refresh_from_db()
        assert subscription.current_period_end == at(2027, 2, 20)

    def test_form_refuses_days_out_of_range_and_a_missing_reason(self, client):
        subscription = SubscriptionFactory()
        client.force_login(staff_member("Support"))
        period_end = subscription.current_period_end.isoformat()

        response = client.post(
            extend_url(subscription), {"days": "400", "reason": "", "period_end": period_end}
        )

        errors = response.context["form"].errors
        assert set(errors) == {"days", "reason"}
        subscription.refresh_from_db()
        assert subscription.current_period_end.isoformat() == period_end

    def test_an_impossible_period_end_in_the_form_is_refused_not_a_crash(self, client):
        subscription = SubscriptionFactory()
        client.force_login(staff_member("Support"))

        response = client.post(
            extend_url(subscription),
            {"days": "5", "reason": "Outage", "period_end": "2027-02-30T00:00:00+00:00"},
        )

        assert response.status_code == 200
        assert response.context["form"].errors["period_end"] == ["The form is out of date; open it again."]

    def test_a_form_sent_after_the_subscription_ended_is_turned_away(self, client):
        subscription = SubscriptionFactory()
        client.force_login(staff_member("Support"))
        period_end = subscription.current_period_end.isoformat()
        Subscription.objects.filter(pk=subscription.pk).update(status=S.EXPIRED)

        response = client.post(
            extend_url(subscription), {"days": "5", "reason": "Outage", "period_end": period_end}, follow=True
        )

        assert response.redirect_chain[-1][0] == change_url(subscription)
        assert "Only a trialing or active subscription can be extended." in response.content.decode()
        subscription.refresh_from_db()
        assert subscription.current_period_end.isoformat() == period_end

    def test_past_due_subscription_shows_no_button(self, client):
        subscription = SubscriptionFactory(status=S.PAST_DUE)
        client.force_login(staff_member("Support"))

        page = client.get(change_url(subscription)).content.decode()

        assert extend_url(subscription) not in page
        redirected = client.get(extend_url(subscription), follow=True)
        assert "Only a trialing or active subscription can be extended." in redirected.content.decode()

    def test_support_without_the_permission_neither_sees_nor_uses_the_action(self, client):
        subscription = SubscriptionFactory()
        end = subscription.current_period_end
        user = User.objects.create_user(username="trainee", is_staff=True)
        user.user_permissions.add(
            *Group.objects.get(name="Support").permissions.exclude(codename="extend_subscription")
        )
        client.force_login(user)

        page = client.get(change_url(subscription))
        assert page.status_code == 200
        assert extend_url(subscription) not in page.content.decode()
        assert client.get(extend_url(subscription)).status_code == 403
        posted = client.post(
            extend_url(subscription),
            {"days": "10", "reason": "x", "period_end": end.isoformat(), "confirm": "yes"},
        )
        assert posted.status_code == 403
        subscription.refresh_from_db()
        assert subscription.current_period_end == end

    @pytest.mark.parametrize("role", ["Manager", "Accounting"])
    def test_other_roles_cannot_extend(self, client, role):
        subscription = SubscriptionFactory()
        client.force_login(staff_member(role))

        assert client.get(extend_url(subscription)).status_code == 403
