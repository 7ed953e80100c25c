"""What each period costs: the locked price, less a promo code's discount while it is in effect."""

from datetime import UTC, datetime, timedelta

import pytest

from billing.models import Subscription, SubscriptionStatus
from billing.periods import add_months
from billing.pricing import amount_for_period
from billing.promotions import promo_redemption_record
from billing.tests.factories import SubscriptionFactory
from core import clock
from payments.models import CheckoutSession, Payment, PaymentKind, PaymentStatus
from payments.services.checkout import checkout_sync
from payments.services.renewals import RenewalOutcome, renewal_run
from tariffs.models import PromoCode, PromoDuration, PromoKind, PromoRedemption
from tariffs.tests.factories import PromoCodeFactory, TariffFactory

pytestmark = pytest.mark.django_db
ANCHOR = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)


def discounted_subscription(
    *, kind=PromoKind.PERCENT, value=15, currency="", periods=1, amount=39900, period_unit="month"
):
    """Return a subscription anchored at ANCHOR whose redemption promised this discount."""
    tariff = TariffFactory(amount=amount, currency="RUB", period_unit=period_unit)
    subscription = SubscriptionFactory(
        tariff=tariff,
        billing_anchor=ANCHOR,
        current_period_start=ANCHOR,
        current_period_end=add_months(ANCHOR, 12 if period_unit == "year" else 1),
    )
    PromoRedemption.objects.create(
        promo=PromoCodeFactory(),
        account=subscription.account,
        subscription=subscription,
        kind=kind,
        value=value,
        currency=currency,
        periods=periods,
    )
    return subscription


def amounts(subscription: Subscription, *, periods: int, months: int = 1) -> list[int]:
    """Return the amounts of the first `periods` periods (the first one before it is known)."""
    starts = [None] + [add_months(ANCHOR, n * months) for n in range(1, periods)]
    return [amount_for_period(subscription=subscription, period_start=start) for start in starts]


class TestAmountForPeriod:
    def test_without_a_code_every_period_costs_the_locked_price(self):
        subscription = SubscriptionFactory(tariff=TariffFactory(amount=39900))
        assert amount_for_period(subscription=subscription, period_start=None) == 39900
        assert amount_for_period(subscription=subscription, period_start=add_months(ANCHOR, 5)) == 39900

    def test_once_discounts_the_first_period_only(self):
        subscription = discounted_subscription(periods=1)
        assert amounts(subscription, periods=3) == [33915, 39900, 39900]
        # The first period named by its start (a trial's first paid period) is discounted too.
        assert amount_for_period(subscription=subscription, period_start=ANCHOR) == 33915

    def test_repeating_discounts_exactly_its_number_of_periods(self):
        subscription = discounted_subscription(periods=3)
        assert amounts(subscription, periods=5) == [33915, 33915, 33915, 39900, 39900]

    def test_forever_discounts_every_period(self):
        subscription = discounted_subscription(periods=None)
        assert amounts(subscription, periods=4) == [33915] * 4
        assert amount_for_period(subscription=subscription, period_start=add_months(ANCHOR, 120)) == 33915

    def test_periods_of_a_yearly_tariff_are_counted_in_years(self):
        subscription = discounted_subscription(periods=2, amount=399000, period_unit="year")
        assert amounts(subscription, periods=3, months=12) == [339150, 339150, 399000]

    def test_month_end_anchors_count_periods_by_calendar_month(self):
        subscription = discounted_subscription(periods=2)
        # 31 Jan → 28 Feb → 31 Mar: the boundaries clamp, the count does not slip.
        assert amount_for_period(
            subscription=subscription, period_start=datetime(2027, 2, 28, 9, tzinfo=UTC)
        ) == (33915)
        assert amount_for_period(
            subscription=subscription, period_start=datetime(2027, 3, 31, 9, tzinfo=UTC)
        ) == (39900)

    @pytest.mark.parametrize(
        ("kind", "value", "currency", "amount", "expected"),
        [
            (PromoKind.PERCENT, 15, "", 999, 849),  # 149.85 off rounds to 150
            (PromoKind.PERCENT, 100, "", 39900, 0),
            (PromoKind.FIXED, 10000, "RUB", 39900, 29900),
            (PromoKind.FIXED, 50000, "RUB", 39900, 0),  # never below zero
            (PromoKind.FIXED, 500, "USD", 39900, 39900),  # another currency's amount never applies
        ],
        ids=["percent-rounded", "hundred-percent", "fixed", "fixed-above-price", "fixed-other-currency"],
    )
    def test_discount_arithmetic(self, kind, value, currency, amount, expected):
        subscription = discounted_subscription(kind=kind, value=value, currency=currency, amount=amount)
        assert amount_for_period(subscription=subscription, period_start=None) == expected

    def test_editing_the_code_later_changes_nothing_promised(self):
        promo = PromoCodeFactory(percent_off=15, duration=PromoDuration.REPEATING, duration_periods=2)
        subscription = SubscriptionFactory(tariff=TariffFactory(amount=39900), billing_anchor=ANCHOR)
        promo_redemption_record(promo=promo, subscription=subscription)

        PromoCode.objects.filter(pk=promo.pk).update(
            percent_off=90, duration=PromoDuration.FOREVER, duration_periods=None
        )

        assert amounts(subscription, periods=3) == [33915, 33915, 39900]


def move_to(moment: datetime) -> None:
    """Move the billing clock so that it reads `moment` (never backwards)."""
    clock.advance(max(moment - clock.now(), timedelta(0)))


def subscribe_and_pay(viewer_client, provider, *, tariff: str, promo_code: str) -> Subscription:
    body = (
        viewer_client("alice")
        .post("/api/v1/subscriptions/", {"tariff": tariff, "promo_code": promo_code}, format="json")
        .json()
    )
    session_id = CheckoutSession.objects.get(pk=body["checkout"]["id"]).provider_session_id
    assert session_id is not None
    assert provider.pay(session_id, "4242424242424242").outcome == "succeeded"
    checkout_sync(provider_session_id=session_id)
    return Subscription.objects.get(checkout_sessions__provider_session_id=session_id)


def renew(subscription: Subscription) -> None:
    subscription.refresh_from_db()
    assert subscription.current_period_end is not None
    move_to(subscription.current_period_end)
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED


def paid_amounts(subscription: Subscription) -> list[tuple[str, int]]:
    payments = Payment.objects.filter(subscription=subscription, status=PaymentStatus.SUCCEEDED)
    return [(payment.kind, payment.amount) for payment in payments.order_by("period_start")]


class TestRenewals:
    def test_repeating_code_discounts_exactly_its_periods_across_renewals(
        self, viewer_client, memory_provider
    ):
        TariffFactory(slug="monthly", amount=39900, currency="RUB")
        PromoCodeFactory(code="HALF2", percent_off=50, duration=PromoDuration.REPEATING, duration_periods=2)
        subscription = subscribe_and_pay(viewer_client, memory_provider, tariff="monthly", promo_code="half2")

        for _ in range(3):
            renew(subscription)

        assert paid_amounts(subscription) == [
            (PaymentKind.INITIAL, 19950),
            (PaymentKind.RENEWAL, 19950),
            (PaymentKind.RENEWAL, 39900),
            (PaymentKind.RENEWAL, 39900),
        ]
        assert sorted(intent.amount for intent in memory_provider.payment_intents()) == [
            19950,
            19950,
            39900,
            39900,
        ]

    def test_free_forever_code_renews_without_charging(self, viewer_client, memory_provider):
        TariffFactory(slug="monthly", amount=39900, currency="RUB")
        PromoCodeFactory(code="STAFF", percent_off=100, duration=PromoDuration.FOREVER)
        subscription = subscribe_and_pay(viewer_client, memory_provider, tariff="monthly", promo_code="STAFF")
        assert subscription.status == SubscriptionStatus.ACTIVE

        renew(subscription)
        renew(subscription)

        assert paid_amounts(subscription) == [(PaymentKind.RENEWAL, 0), (PaymentKind.RENEWAL, 0)]
        assert memory_provider.payment_intents() == []

    def test_once_code_on_a_trial_discounts_the_first_paid_period(self, viewer_client, memory_provider):
        TariffFactory(slug="yearly", amount=399000, currency="RUB", period_unit="year", trial_days=7)
        PromoCodeFactory(code="HALFYEAR", percent_off=50)
        subscription = subscribe_and_pay(
            viewer_client, memory_provider, tariff="yearly", promo_code="HALFYEAR"
        )
        assert subscription.status == SubscriptionStatus.TRIALING

        renew(subscription)
        renew(subscription)

        assert paid_amounts(subscription) == [(PaymentKind.RENEWAL, 199500), (PaymentKind.RENEWAL, 399000)]
