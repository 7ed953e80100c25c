"""A viewer's subscription says what its next renewal will charge, and when, and where to pay what waits.

`next_charge` is what the renewal job will take (the locked price less a discount still in
effect, or a scheduled downgrade's price), null when nothing will be charged; a pending
subscription's `payment_action_url` is the review page of its open checkout. The list answers
in the same number of queries however many subscriptions it shows.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import BillingAccount
from billing.models import Subscription, SubscriptionStatus
from billing.tests.factories import SubscriptionFactory
from core import clock
from payments.models import CheckoutMode, CheckoutSession, CheckoutStatus, PaymentKind, PaymentStatus
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.factories import PaymentFactory
from tariffs.models import PeriodUnit, PromoKind, PromoRedemption, Tariff
from tariffs.tests.factories import PromoCodeFactory, TariffFactory

pytestmark = pytest.mark.django_db

# A monthly period, 1 January to 1 February 2027, anchored at its start: paid period number 0.
START = datetime(2027, 1, 1, tzinfo=UTC)
END = datetime(2027, 2, 1, tzinfo=UTC)
SUBSCRIPTIONS = "/api/v1/subscriptions/"


@pytest.fixture
def monthly() -> Tariff:
    return TariffFactory.create(slug="monthly", name="Monthly", amount=39900)


def running(tariff: Tariff, user_id: str = "alice", **fields: object) -> Subscription:
    """Return an active subscription of `user_id` to `tariff` in the period from START to END."""
    values: dict[str, object] = {
        "account": BillingAccount.objects.get_or_create(user_id=user_id)[0],
        "tariff": tariff,
        "billing_anchor": START,
        "current_period_start": START,
        "current_period_end": END,
        **fields,
    }
    return SubscriptionFactory.create(**values)


def discount(subscription: Subscription, *, percent: int = 20, periods: int | None) -> PromoRedemption:
    """Record that a promo code takes `percent` off the subscription's first `periods` periods (None: all)."""
    return PromoRedemption.objects.create(
        promo=PromoCodeFactory.create(),
        account=subscription.account,
        subscription=subscription,
        kind=PromoKind.PERCENT,
        value=percent,
        periods=periods,
    )


def shown(viewer_client, subscription: Subscription) -> dict:
    return viewer_client(subscription.account.user_id).get(f"{SUBSCRIPTIONS}{subscription.pk}/").json()


class TestNextCharge:
    def test_a_renewing_subscription_is_charged_its_price_at_the_period_end(self, viewer_client, monthly):
        body = shown(viewer_client, running(monthly))
        assert body["next_charge"] == {"amount": 39900, "currency": "RUB", "at": body["current_period_end"]}

    @pytest.mark.parametrize(
        "fields",
        [
            {"autopay": False},
            {"cancel_at_period_end": True},
            {"status": SubscriptionStatus.EXPIRED},
            {"status": SubscriptionStatus.CANCELED},
            {"status": SubscriptionStatus.PENDING, "current_period_start": None, "current_period_end": None},
        ],
        ids=["autopay-off", "canceled-at-period-end", "expired", "canceled", "pending"],
    )
    def test_nothing_is_charged_when_nothing_renews(self, viewer_client, monthly, fields):
        assert shown(viewer_client, running(monthly, **fields))["next_charge"] is None

    @pytest.mark.parametrize(
        ("periods", "expected"),
        [(1, 39900), (3, 31920), (None, 31920)],
        ids=["first-period-only: over", "three-periods: still on", "every-period"],
    )
    def test_a_discount_counts_only_if_it_covers_the_next_period(
        self, viewer_client, monthly, periods, expected
    ):
        subscription = running(monthly)
        discount(subscription, periods=periods)
        assert shown(viewer_client, subscription)["next_charge"]["amount"] == expected

    def test_what_is_shown_is_what_the_renewal_charges(
        self, viewer_client, paid_subscription, memory_provider
    ):
        subscription = paid_subscription()
        discount(subscription, periods=2)
        promised = shown(viewer_client, subscription)["next_charge"]
        assert promised["amount"] == 31920

        assert subscription.current_period_end is not None
        clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED

        renewal = subscription.payments.get(kind=PaymentKind.RENEWAL)
        assert (renewal.amount, renewal.status) == (promised["amount"], PaymentStatus.SUCCEEDED)
        assert renewal.period_start.isoformat().replace("+00:00", "Z") == promised["at"]

    def test_a_trial_is_charged_the_first_paid_period_at_its_end(self, viewer_client, monthly):
        trial_end = START + timedelta(days=7)
        subscription = running(
            monthly,
            status=SubscriptionStatus.TRIALING,
            trial_end=trial_end,
            billing_anchor=trial_end,
            current_period_end=trial_end,
        )
        discount(subscription, periods=1)  # the first paid period is the one after the trial
        body = shown(viewer_client, subscription)
        assert body["next_charge"] == {"amount": 31920, "currency": "RUB", "at": body["trial_end"]}


class TestNextChargeWithADowngradeScheduled:
    def test_the_new_tariffs_price_is_charged(self, viewer_client, monthly):
        basic = TariffFactory(slug="basic", amount=19900)
        body = shown(viewer_client, running(monthly, scheduled_tariff=basic))
        assert body["next_charge"] == {"amount": 19900, "currency": "RUB", "at": body["current_period_end"]}

    def test_a_discount_still_in_effect_carries_over_with_the_same_period_length(
        self, viewer_client, monthly
    ):
        subscription = running(monthly, scheduled_tariff=TariffFactory(amount=19900))
        discount(subscription, periods=3)
        assert shown(viewer_client, subscription)["next_charge"]["amount"] == 15920

    @pytest.mark.parametrize(
        ("periods", "expected"), [(3, 39900), (None, 31920)], ids=["limited", "every-period"]
    )
    def test_another_period_length_ends_a_limited_discount_only(self, viewer_client, periods, expected):
        yearly = TariffFactory(slug="yearly", amount=399000, period_unit=PeriodUnit.YEAR)
        monthly = TariffFactory(slug="monthly", amount=39900)
        subscription = running(
            yearly, current_period_end=datetime(2028, 1, 1, tzinfo=UTC), scheduled_tariff=monthly
        )
        discount(subscription, periods=periods)
        assert shown(viewer_client, subscription)["next_charge"]["amount"] == expected

    def test_a_code_for_chosen_tariffs_does_not_discount_the_tariff_it_does_not_cover(
        self, viewer_client, monthly
    ):
        basic = TariffFactory(slug="basic", amount=19900)
        subscription = running(monthly, scheduled_tariff=basic)
        redemption = discount(subscription, periods=None)
        redemption.promo.tariffs.set([monthly])
        assert shown(viewer_client, subscription)["next_charge"]["amount"] == 19900


class TestNextChargeWhenPastDue:
    def test_the_unpaid_renewal_is_charged_at_the_next_retry(self, viewer_client, monthly):
        retry_at = END + timedelta(days=3)
        subscription = running(monthly, status=SubscriptionStatus.PAST_DUE, next_renewal_attempt_at=retry_at)
        discount(subscription, periods=None)
        body = shown(viewer_client, subscription)
        assert body["next_charge"] == {
            "amount": 31920,
            "currency": "RUB",
            "at": body["next_renewal_attempt_at"],
        }

    def test_with_no_retry_planned_it_is_due_now_and_waits_for_the_viewer(self, viewer_client, monthly):
        subscription = running(monthly, status=SubscriptionStatus.PAST_DUE, next_renewal_attempt_at=None)
        assert shown(viewer_client, subscription)["next_charge"] == {
            "amount": 39900,
            "currency": "RUB",
            "at": None,
        }


class TestPendingPaymentActionUrl:
    def test_a_pending_subscription_leads_to_the_review_page_of_its_open_checkout(
        self, viewer_client, monthly, memory_provider
    ):
        client = viewer_client("alice")
        answer = client.post(SUBSCRIPTIONS, {"tariff": "monthly"}, format="json").json()
        checkout_id = answer["checkout"]["id"]
        review = f"{settings.PUBLIC_BASE_URL}/checkout/review/?checkout={checkout_id}"

        listed = client.get(SUBSCRIPTIONS).json()["results"][0]
        detail = client.get(f"{SUBSCRIPTIONS}{listed['id']}/").json()
        assert (listed["status"], listed["payment_action_url"], detail["payment_action_url"]) == (
            "pending",
            review,
            review,
        )
        page = client.get(review.removeprefix(settings.PUBLIC_BASE_URL))
        assert page.status_code == 200
        assert CheckoutSession.objects.get(pk=checkout_id).url in page.content.decode()

    def test_an_expired_page_is_not_offered_and_subscribing_again_opens_a_fresh_one(
        self, viewer_client, monthly, memory_provider
    ):
        client = viewer_client("alice")
        first = client.post(SUBSCRIPTIONS, {"tariff": "monthly"}, format="json").json()["checkout"]["id"]
        clock.advance(settings.CHECKOUT_SESSION_TTL + timedelta(minutes=1))
        assert client.get(SUBSCRIPTIONS).json()["results"][0]["payment_action_url"] is None

        again = client.post(SUBSCRIPTIONS, {"tariff": "monthly"}, format="json").json()["checkout"]["id"]
        assert again != first
        listed = client.get(SUBSCRIPTIONS).json()["results"][0]
        assert listed["payment_action_url"] == f"{settings.PUBLIC_BASE_URL}/checkout/review/?checkout={again}"

    def test_a_page_that_ended_is_not_offered(self, viewer_client, monthly):
        subscription = running(
            monthly, status=SubscriptionStatus.PENDING, current_period_start=None, current_period_end=None
        )
        CheckoutSession.objects.create(
            subscription=subscription,
            mode=CheckoutMode.SETUP,  # no payment row needed
            status=CheckoutStatus.EXPIRED,
            url="https://pay.example/expired",
            expires_at=clock.now() + timedelta(minutes=30),
        )
        assert shown(viewer_client, subscription)["payment_action_url"] is None


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(SUBSCRIPTIONS)
    assert response.status_code == 200
    return len(queries)


def _history(user_id: str, tariff: Tariff, count: int) -> None:
    """Give a viewer `count` ended subscriptions, each with a discount, a paid checkout and payments."""
    for _ in range(count):
        ended = running(tariff, user_id=user_id, status=SubscriptionStatus.EXPIRED)
        discount(ended, periods=None)
        CheckoutSession.objects.create(
            subscription=ended,
            mode=CheckoutMode.SETUP,  # no payment row needed
            status=CheckoutStatus.COMPLETE,
            url="https://pay.example/done",
            expires_at=START,
        )
        PaymentFactory(subscription=ended)


class TestTheListAsksAFixedNumberOfQueries:
    @pytest.mark.parametrize("live", ["pending", "active", "past_due"])
    def test_however_many_subscriptions_and_whatever_the_live_one_shows(
        self, viewer_client, monthly, memory_provider, live
    ):
        # The baseline: one ended subscription, nothing for its output to look up but the
        # promo code it was bought with (its tariffs are read once for the whole list).
        baseline = viewer_client("few")
        baseline.get("/api/v1/access/")  # the first request opens the account
        discount(running(monthly, user_id="few", status=SubscriptionStatus.EXPIRED), periods=3)
        expected = _list_queries(baseline)

        client = viewer_client("many")
        client.get("/api/v1/access/")
        _history("many", monthly, 6)
        if live == "pending":
            client.post(SUBSCRIPTIONS, {"tariff": "monthly"}, format="json")
        else:
            subscription = running(monthly, user_id="many", scheduled_tariff=TariffFactory(amount=19900))
            discount(subscription, periods=3)
            if live == "past_due":
                Subscription.objects.filter(pk=subscription.pk).update(status=SubscriptionStatus.PAST_DUE)
                PaymentFactory(
                    subscription=subscription,
                    kind=PaymentKind.RENEWAL,
                    status=PaymentStatus.FAILED,
                    failure_code="authentication_required",
                    period_start=END,
                    period_end=datetime(2027, 3, 1, tzinfo=UTC),
                )
        body = client.get(SUBSCRIPTIONS).json()
        live_one = next(s for s in body["results"] if s["status"] == live)
        assert live_one["payment_action_url"] if live != "active" else live_one["next_charge"]

        assert _list_queries(client) == expected
