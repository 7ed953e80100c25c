"""Promo codes: typed at subscribe, checked, counted once, and kept by the viewer as promised.

Subscribes run through the API; the provider is the in-memory one (a promo rule is about our
rows and amounts, not the wire), and pages are paid through its test handle.
"""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from billing.models import Subscription, SubscriptionStatus
from billing.promotions import PromoCodeExhausted, promo_redemption_record
from billing.tests.factories import SubscriptionFactory
from core import clock
from payments.gateways import get_gateway
from payments.models import CheckoutSession, Payment
from payments.services.checkout import checkout_sync
from payments.services.subscribe import subscribe
from tariffs.models import PromoCode, PromoDuration, PromoKind, PromoRedemption
from tariffs.tests.factories import PromoCodeFactory, TariffFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/subscriptions/"


@pytest.fixture
def monthly():
    return TariffFactory(slug="monthly", name="Monthly", amount=39900, currency="RUB")


@pytest.fixture
def yearly():
    return TariffFactory(slug="yearly", name="Yearly", amount=399000, currency="RUB", period_unit="year")


def subscribe_with(
    viewer_client, user_id: str, tariff: str = "monthly", promo_code: str | None = None, **headers
):
    payload = {"tariff": tariff} | ({"promo_code": promo_code} if promo_code is not None else {})
    return viewer_client(user_id).post(URL, payload, format="json", **headers)


def pay(provider, checkout_id: str, card: str = "4242424242424242") -> Subscription:
    """Pay a checkout at the provider and settle it as the success page would."""
    checkout = CheckoutSession.objects.get(pk=checkout_id)
    assert checkout.provider_session_id is not None
    assert provider.pay(checkout.provider_session_id, card).outcome == "succeeded"
    checkout_sync(provider_session_id=checkout.provider_session_id)
    return Subscription.objects.get(pk=checkout.subscription_id)


def expire_at_stripe(checkout_id: str) -> None:
    """Let a checkout page expire unpaid, as Stripe does after its time is up."""
    checkout = CheckoutSession.objects.get(pk=checkout_id)
    assert checkout.provider_session_id is not None
    get_gateway().expire_checkout_session(
        checkout.provider_session_id, idempotency_key=f"test-expire:{checkout.pk}"
    )
    checkout_sync(provider_session_id=checkout.provider_session_id)


def uses_of(promo: PromoCode) -> int:
    promo.refresh_from_db()
    return promo.times_redeemed


class TestDiscountAtSubscribe:
    def test_percent_code_discounts_the_first_payment(self, viewer_client, memory_provider, monthly):
        promo = PromoCodeFactory(code="WELCOME15", percent_off=15)

        response = subscribe_with(viewer_client, "alice", promo_code="WELCOME15")

        assert response.status_code == 201
        body = response.json()
        # 15% of 399.00 is 59.85: the viewer pays 339.15, and Stripe is asked for exactly that.
        assert (body["payment"]["amount"], body["subscription"]["amount"]) == (33915, 39900)
        assert memory_provider.checkout_sessions()[0].amount_total == 33915
        redemption = PromoRedemption.objects.get()
        assert str(redemption.subscription_id) == body["subscription"]["id"]
        assert (redemption.kind, redemption.value, redemption.currency, redemption.periods) == (
            PromoKind.PERCENT,
            15,
            "",
            1,
        )
        assert uses_of(promo) == 1

    def test_fixed_code_takes_its_amount_off_the_first_payment(self, viewer_client, memory_provider, monthly):
        PromoCodeFactory(code="MINUS100", fixed=True, amount_off=10000, currency="RUB")

        body = subscribe_with(viewer_client, "alice", promo_code="MINUS100").json()

        assert body["payment"]["amount"] == 29900
        assert memory_provider.checkout_sessions()[0].amount_total == 29900

    @pytest.mark.parametrize("typed", ["welcome15", "Welcome15", "WELCOME15"])
    def test_code_is_matched_whatever_its_case(self, viewer_client, memory_provider, monthly, typed):
        PromoCodeFactory(code="WELCOME15")

        response = subscribe_with(viewer_client, "alice", promo_code=typed)

        assert response.status_code == 201
        assert response.json()["payment"]["amount"] == 33915

    def test_code_restricted_to_the_chosen_tariff_applies(
        self, viewer_client, memory_provider, monthly, yearly
    ):
        PromoCodeFactory(code="MONTHLY15", tariffs=[monthly])

        assert subscribe_with(viewer_client, "alice", promo_code="MONTHLY15").status_code == 201

    def test_free_first_period_saves_the_card_without_a_charge(self, viewer_client, memory_provider, monthly):
        PromoCodeFactory(code="FREEMONTH", percent_off=100)

        body = subscribe_with(viewer_client, "alice", promo_code="FREEMONTH").json()

        assert body["checkout"]["mode"] == "setup"
        assert body["payment"] is None
        subscription = pay(memory_provider, body["checkout"]["id"])
        assert subscription.status == SubscriptionStatus.ACTIVE
        assert subscription.trial_end is None
        assert memory_provider.payment_intents() == []
        assert not Payment.objects.exists()

    def test_fixed_code_above_the_price_makes_the_first_period_free(
        self, viewer_client, memory_provider, monthly
    ):
        PromoCodeFactory(code="GIFT500", fixed=True, amount_off=50000, currency="RUB")

        body = subscribe_with(viewer_client, "alice", promo_code="GIFT500").json()

        assert body["checkout"]["mode"] == "setup"

    def test_free_first_period_of_a_trial_tariff_gives_no_second_trial(self, viewer_client, memory_provider):
        TariffFactory(slug="yearly-trial", amount=399000, period_unit="year", trial_days=7)
        SubscriptionFactory(
            account__user_id="alice",
            status=SubscriptionStatus.EXPIRED,
            trial_end=timezone.now() - timedelta(days=400),
        )
        PromoCodeFactory(code="FREEYEAR", percent_off=100)

        body = subscribe_with(viewer_client, "alice", "yearly-trial", promo_code="FREEYEAR").json()
        subscription = pay(memory_provider, body["checkout"]["id"])

        assert subscription.status == SubscriptionStatus.ACTIVE
        assert subscription.trial_end is None


class TestRefusedCodes:
    @pytest.mark.parametrize(
        ("promo", "code"),
        [
            ({"code": "OTHER"}, "promo_code_invalid"),
            ({"is_active": False}, "promo_code_invalid"),
            ({"valid_from": timedelta(days=1)}, "promo_code_not_yet_valid"),
            ({"valid_from": timedelta(days=-30), "valid_until": timedelta(seconds=-1)}, "promo_code_expired"),
            ({"fixed": True, "amount_off": 500, "currency": "USD"}, "promo_code_not_applicable"),
            ({"restricted": True}, "promo_code_not_applicable"),
            ({"max_redemptions": 3, "times_redeemed": 3}, "promo_code_exhausted"),
        ],
        ids=[
            "unknown",
            "inactive",
            "not-yet-valid",
            "expired",
            "other-currency",
            "other-tariff",
            "exhausted",
        ],
    )
    def test_code_that_cannot_be_used_is_400_and_writes_nothing(
        self, viewer_client, memory_provider, monthly, yearly, promo, code
    ):
        now = timezone.now()
        attributes = {
            name: now + value if isinstance(value, timedelta) else value
            for name, value in promo.items()
            if name != "restricted"
        }
        created = PromoCodeFactory(**{"code": "SPRING"} | attributes)
        if promo.get("restricted"):
            created.tariffs.set([yearly])

        response = subscribe_with(viewer_client, "alice", promo_code="spring")

        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["details"]["promo_code"]) == (code, "SPRING")
        assert not Subscription.objects.exists()
        assert not PromoRedemption.objects.exists()
        assert uses_of(created) == attributes.get("times_redeemed", 0)
        assert memory_provider.writes() == []

    def test_viewer_who_used_the_code_already_gets_400(self, viewer_client, memory_provider, monthly):
        promo = PromoCodeFactory(code="ONCEEACH", max_per_account=1)
        earlier = SubscriptionFactory(
            account__user_id="alice", tariff=monthly, status=SubscriptionStatus.EXPIRED
        )
        promo_redemption_record(promo=promo, subscription=earlier)

        response = subscribe_with(viewer_client, "alice", promo_code="onceeach")

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "promo_code_already_used"
        assert subscribe_with(viewer_client, "bob", promo_code="onceeach").status_code == 201

    def test_refused_code_leaves_the_open_checkout_as_it_was(self, viewer_client, memory_provider, monthly):
        PromoCodeFactory(
            code="OLD", valid_from=timezone.now() - timedelta(days=9), valid_until=timezone.now()
        )
        first = subscribe_with(viewer_client, "alice").json()

        refused = subscribe_with(viewer_client, "alice", promo_code="OLD")

        assert refused.json()["error"]["code"] == "promo_code_expired"
        checkout = CheckoutSession.objects.get(pk=first["checkout"]["id"])
        assert checkout.status == "open"
        assert memory_provider.checkout_sessions()[0].status == "open"
        assert Subscription.objects.get().status == SubscriptionStatus.PENDING

    def test_same_idempotency_key_with_another_code_is_refused(self, viewer_client, memory_provider, monthly):
        PromoCodeFactory(code="WELCOME15")
        subscribe_with(viewer_client, "alice", HTTP_IDEMPOTENCY_KEY="k-1")

        response = subscribe_with(viewer_client, "alice", promo_code="WELCOME15", HTTP_IDEMPOTENCY_KEY="k-1")

        assert response.status_code == 422


class TestCountingUses:
    def test_same_choice_with_the_same_code_reuses_the_checkout_and_counts_once(
        self, viewer_client, memory_provider, monthly
    ):
        promo = PromoCodeFactory(code="WELCOME15", max_redemptions=5)
        first = subscribe_with(viewer_client, "alice", promo_code="WELCOME15").json()

        again = subscribe_with(viewer_client, "alice", promo_code="welcome15")

        assert again.status_code == 200
        assert again.json()["checkout"]["id"] == first["checkout"]["id"]
        assert uses_of(promo) == 1
        assert PromoRedemption.objects.count() == 1

    def test_adding_a_code_replaces_the_checkout_opened_without_it(
        self, viewer_client, memory_provider, monthly
    ):
        PromoCodeFactory(code="WELCOME15")
        first = subscribe_with(viewer_client, "alice").json()

        second = subscribe_with(viewer_client, "alice", promo_code="WELCOME15")

        assert second.status_code == 201
        assert second.json()["payment"]["amount"] == 33915
        assert CheckoutSession.objects.get(pk=first["checkout"]["id"]).status == "expired"

    def test_dropping_the_code_replaces_the_discounted_checkout(
        self, viewer_client, memory_provider, monthly
    ):
        promo = PromoCodeFactory(code="WELCOME15", max_redemptions=1)
        subscribe_with(viewer_client, "alice", promo_code="WELCOME15")

        second = subscribe_with(viewer_client, "alice")

        assert second.status_code == 201
        assert second.json()["payment"]["amount"] == 39900
        # The replaced subscription never started: the next viewer gets its use.
        assert subscribe_with(viewer_client, "bob", promo_code="WELCOME15").status_code == 201
        assert uses_of(promo) == 1

    def test_other_tariff_with_the_same_code_hands_the_use_over(
        self, viewer_client, memory_provider, monthly, yearly
    ):
        promo = PromoCodeFactory(code="LASTONE", max_redemptions=1)
        first = subscribe_with(viewer_client, "alice", "monthly", promo_code="LASTONE").json()

        second = subscribe_with(viewer_client, "alice", "yearly", promo_code="LASTONE")

        assert second.status_code == 201
        assert second.json()["payment"]["amount"] == 339150
        assert uses_of(promo) == 1
        old = PromoRedemption.objects.get(subscription_id=first["subscription"]["id"])
        assert old.released_at is not None
        assert PromoRedemption.objects.filter(released_at__isnull=True).count() == 1

    def test_checkout_canceled_unpaid_gives_its_use_back(self, viewer_client, memory_provider, monthly):
        promo = PromoCodeFactory(code="LASTONE", max_redemptions=1, max_per_account=1)
        first = subscribe_with(viewer_client, "alice", promo_code="LASTONE").json()
        canceled = viewer_client("alice").post(f"{URL}{first['subscription']['id']}/cancel/")
        assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")

        again = subscribe_with(viewer_client, "alice", promo_code="LASTONE")

        assert again.status_code == 201
        assert uses_of(promo) == 1

    def test_checkout_expired_at_stripe_gives_its_use_back(self, viewer_client, memory_provider, monthly):
        promo = PromoCodeFactory(code="LASTONE", max_redemptions=1)
        first = subscribe_with(viewer_client, "alice", promo_code="LASTONE").json()
        expire_at_stripe(first["checkout"]["id"])

        bob = subscribe_with(viewer_client, "bob", promo_code="LASTONE")

        assert bob.status_code == 201
        assert uses_of(promo) == 1
        assert PromoRedemption.objects.get(account__user_id="alice").released_at is not None

    def test_paid_subscription_keeps_its_use(self, viewer_client, memory_provider, monthly):
        promo = PromoCodeFactory(code="LASTONE", max_redemptions=1)
        first = subscribe_with(viewer_client, "alice", promo_code="LASTONE").json()
        pay(memory_provider, first["checkout"]["id"])

        bob = subscribe_with(viewer_client, "bob", promo_code="LASTONE")

        assert bob.json()["error"]["code"] == "promo_code_exhausted"
        assert uses_of(promo) == 1

    def test_subscribe_that_fails_after_counting_gives_the_use_back(
        self, memory_provider, monthly, monkeypatch
    ):
        from accounts.tests.factories import BillingAccountFactory

        promo = PromoCodeFactory(code="LASTONE", max_redemptions=1)

        def broken(**kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr("payments.services.subscribe.checkout_prepare", broken)
        with pytest.raises(RuntimeError):
            subscribe(account=BillingAccountFactory(), tariff=monthly, promo_code="LASTONE")

        assert uses_of(promo) == 0
        assert not PromoRedemption.objects.exists()

    def test_exhausted_code_with_nothing_to_give_back_raises(self, monthly):
        from billing.promotions import promo_code_redeem

        promo = PromoCodeFactory(max_redemptions=2, times_redeemed=2)

        with pytest.raises(PromoCodeExhausted):
            promo_code_redeem(promo=promo, at=clock.now())
        assert uses_of(promo) == 2


class TestConstraints:
    @pytest.mark.parametrize(
        "attributes",
        [
            {"code": "lower"},
            {"code": "AB"},
            {"percent_off": 0},
            {"percent_off": 101},
            {"percent_off": 10, "amount_off": 100},
            {"percent_off": None},
            {"kind": PromoKind.FIXED, "percent_off": None, "amount_off": None, "currency": "RUB"},
            {"kind": PromoKind.FIXED, "percent_off": None, "amount_off": 100, "currency": ""},
            {"kind": PromoKind.FIXED, "percent_off": None, "amount_off": 0, "currency": "RUB"},
            {"duration": PromoDuration.REPEATING},
            {"duration": PromoDuration.ONCE, "duration_periods": 3},
            {"max_redemptions": 0},
            {"max_per_account": 0},
            {"valid_from": timezone.now(), "valid_until": timezone.now() - timedelta(days=1)},
        ],
        ids=[
            "lower-case",
            "too-short",
            "zero-percent",
            "over-100-percent",
            "percent-and-amount",
            "percent-without-value",
            "fixed-without-amount",
            "fixed-without-currency",
            "fixed-zero",
            "repeating-without-count",
            "once-with-count",
            "zero-uses",
            "zero-per-account",
            "window-backwards",
        ],
    )
    def test_database_refuses_an_impossible_code(self, attributes):
        with pytest.raises(IntegrityError), transaction.atomic():
            PromoCodeFactory(**attributes)

    def test_codes_are_unique(self):
        PromoCodeFactory(code="SAME")
        with pytest.raises(IntegrityError), transaction.atomic():
            PromoCodeFactory(code="SAME")


def promo_form(**overrides: str) -> dict[str, str]:
    data = {
        "code": "spring-15",
        "description": "Spring newsletter",
        "is_active": "on",
        "kind": PromoKind.PERCENT,
        "percent_off": "15",
        "amount": "",
        "currency": "",
        "duration": PromoDuration.REPEATING,
        "duration_periods": "3",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
        "max_redemptions": "100",
        "max_per_account": "1",
        # As the confirmation page posts it (tariffs/tests/test_admin_confirmation.py asks first).
        "_confirmed": "Yes, save",
    }
    return data | overrides


class TestAdmin:
    add_url = reverse("admin:tariffs_promocode_add")
    changelist_url = reverse("admin:tariffs_promocode_changelist")
    redemptions_url = reverse("admin:tariffs_promoredemption_changelist")

    def test_manager_adds_a_percent_code_stored_in_upper_case(self, login_as, monthly):
        response = login_as("Manager").post(self.add_url, promo_form(tariffs=[str(monthly.pk)]))

        assert response.status_code == 302
        promo = PromoCode.objects.get()
        assert (promo.code, promo.percent_off, promo.amount_off, promo.periods) == ("SPRING-15", 15, None, 3)
        assert list(promo.tariffs.all()) == [monthly]

    def test_manager_adds_a_fixed_code_in_major_units(self, login_as):
        response = login_as("Manager").post(
            self.add_url,
            promo_form(
                kind=PromoKind.FIXED,
                percent_off="",
                amount="100,50",
                currency="rub",
                duration=PromoDuration.ONCE,
                duration_periods="7",
            ),
        )

        assert response.status_code == 302
        promo = PromoCode.objects.get()
        assert (promo.amount_off, promo.currency, promo.percent_off) == (10050, "RUB", None)
        assert promo.duration_periods is None

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"percent_off": "0"}, "percent_off"),
            ({"percent_off": ""}, "percent_off"),
            ({"kind": PromoKind.FIXED, "amount": "100", "currency": ""}, "currency"),
            ({"kind": PromoKind.FIXED, "amount": "100.001", "currency": "RUB"}, "amount"),
            ({"kind": PromoKind.FIXED, "amount": "1,000.00", "currency": "RUB"}, "amount"),
            ({"kind": PromoKind.FIXED, "amount": "100", "currency": "USD"}, "currency"),
            ({"max_per_account": "0"}, "max_per_account"),
            ({"duration_periods": ""}, "duration_periods"),
            ({"code": "no spaces"}, "code"),
        ],
    )
    def test_incomplete_code_is_refused_with_a_field_error(self, login_as, monthly, overrides, field):
        response = login_as("Manager").post(self.add_url, promo_form(**overrides))

        assert response.status_code == 200
        assert field in response.context["adminform"].form.errors
        assert not PromoCode.objects.exists()

    def test_list_shows_uses_and_search_ignores_case(self, login_as):
        PromoCodeFactory(code="SPRING15", max_redemptions=10, times_redeemed=3)
        PromoCodeFactory(code="AUTUMN")

        response = login_as("Manager").get(self.changelist_url, {"q": "spring"})

        assert [promo.code for promo in response.context["cl"].result_list] == ["SPRING15"]
        assert "3 / 10" in response.content.decode()

    def test_accounting_reads_codes_and_redemptions_but_changes_nothing(self, login_as, monthly):
        promo = PromoCodeFactory(code="SPRING15")
        promo_redemption_record(promo=promo, subscription=SubscriptionFactory(tariff=monthly))
        client = login_as("Accounting")

        redemptions = client.get(self.redemptions_url, {"promo__id__exact": promo.pk})

        assert redemptions.status_code == 200
        assert "SPRING15" in redemptions.content.decode()
        assert client.get(self.changelist_url).status_code == 200
        assert client.get(self.add_url).status_code == 403
        change = reverse("admin:tariffs_promocode_change", args=[promo.pk])
        assert client.post(change, promo_form(code="HACKED")).status_code == 403

    def test_redemptions_are_never_written_by_hand(self, login_as, monthly):
        promo = PromoCodeFactory()
        redemption = promo_redemption_record(promo=promo, subscription=SubscriptionFactory(tariff=monthly))
        client = login_as("Manager")

        page = client.get(reverse("admin:tariffs_promoredemption_change", args=[redemption.pk]))

        assert page.status_code == 200
        assert client.get(reverse("admin:tariffs_promoredemption_add")).status_code == 403
        delete = reverse("admin:tariffs_promoredemption_delete", args=[redemption.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403
