"""An upgrade's prorated charge: once whatever the retries and races, 3-D Secure, declines, no charge without a home."""

# The fixtures imported from plan_change_setup are named again as test arguments, as pytest wants.
# ruff: noqa: F811

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from django.db import connection

from billing.models import PlanChange, PlanChangeStatus, Subscription
from billing.services import subscription_cancel
from billing.tests.plan_change_setup import (  # noqa: F401 (fixtures)
    PERIOD_END,
    PERIOD_START,
    frozen_clock,
    in_known_period,
    premium_tariff,
    yearly_tariff,
)
from payments.models import CheckoutSession, Payment, PaymentKind, PaymentStatus, Refund
from payments.services.checkout import checkout_sync
from payments.services.plan_change import change_payment_id, plan_change_apply_intent

pytestmark = pytest.mark.usefixtures("memory_provider")
TEN_DAYS_IN = datetime(2027, 1, 11, tzinfo=UTC)
AUTHENTICATES = "4000002760003184"  # pays at checkout after 3-D Secure; off-session asks for it again
DECLINES_LATER = "4000000000000341"  # saved at checkout, every later charge declined


@pytest.fixture
def running(paid_subscription, frozen_clock):
    def make(card: str = "4242424242424242", user_id: str = "alice") -> Subscription:
        subscription = paid_subscription(user_id=user_id, card=card)
        frozen_clock(TEN_DAYS_IN)
        in_known_period(subscription)
        return subscription

    return make


def upgrade(client, subscription: Subscription, tariff: str = "premium"):
    return client.post(f"/api/v1/subscriptions/{subscription.pk}/change/", {"tariff": tariff}, format="json")


def change_charges(memory_provider) -> list[str | None]:
    return [
        key for _, key in memory_provider.calls("charge_off_session") if key and key.startswith("change:")
    ]


@pytest.mark.django_db
class TestOnce:
    def test_a_retried_request_charges_once_and_answers_the_same(
        self, running, premium_tariff, viewer_client, memory_provider
    ):
        subscription = running()
        client = viewer_client("alice")
        first, second = upgrade(client, subscription), upgrade(client, subscription)
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.json()["payment"]["id"] == second.json()["payment"]["id"]
        assert second.json()["amount_due"] == 13548
        assert Payment.objects.filter(subscription=subscription, kind=PaymentKind.CHANGE).count() == 1
        assert len(change_charges(memory_provider)) == 1
        assert len([c for c in memory_provider.charges() if c.amount == 13548]) == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_identical_upgrades_charge_once(
    running, premium_tariff, viewer_client, memory_provider
):
    assert connection.vendor == "postgresql"
    subscription = running()
    racers = 20
    start = threading.Barrier(racers)

    def request(_: int) -> tuple[int, str]:
        try:
            start.wait()
            answer = upgrade(viewer_client("alice"), subscription)
            return answer.status_code, answer.json().get("status", answer.json().get("error", {}).get("code"))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=racers) as pool:
        outcomes = list(pool.map(request, range(racers)))

    assert outcomes == [(200, "applied")] * racers
    assert len(change_charges(memory_provider)) == 1
    assert len([c for c in memory_provider.charges() if c.amount == 13548]) == 1
    payment = Payment.objects.get(subscription=subscription, kind=PaymentKind.CHANGE)
    assert (payment.status, payment.amount) == (PaymentStatus.SUCCEEDED, 13548)
    fresh = Subscription.objects.get(pk=subscription.pk)
    assert (fresh.tariff_id, fresh.amount) == (premium_tariff.pk, 59900)


@pytest.mark.django_db
class TestBankAsksToAuthenticate:
    def test_nothing_changes_until_the_page_is_paid_then_the_change_applies(
        self, running, premium_tariff, viewer_client, memory_provider
    ):
        subscription = running(card=AUTHENTICATES)
        client = viewer_client("alice")
        answer = upgrade(client, subscription)
        assert answer.status_code == 202, answer.json()
        body = answer.json()
        assert body["status"] == "action_required" and body["payment_action_url"]
        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.tariff.slug, fresh.amount) == ("monthly", 39900)
        payment = Payment.objects.get(kind=PaymentKind.CHANGE)
        assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "authentication_required")
        # Asking again answers the same page rather than charging again.
        again = upgrade(client, subscription).json()
        assert again["payment_action_url"] == body["payment_action_url"]
        assert len(change_charges(memory_provider)) == 1

        checkout = CheckoutSession.objects.get(payment=payment)
        memory_provider.pay(checkout.provider_session_id, AUTHENTICATES)
        memory_provider.authenticate(checkout.provider_session_id)
        checkout_sync(provider_session_id=checkout.provider_session_id)

        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.tariff_id, fresh.amount, fresh.current_period_end) == (
            premium_tariff.pk,
            59900,
            PERIOD_END,
        )
        payment.refresh_from_db()
        assert (payment.status, payment.amount) == (PaymentStatus.SUCCEEDED, 13548)
        assert PlanChange.objects.get().status == PlanChangeStatus.APPLIED

    def test_a_page_paid_after_the_viewer_canceled_is_refunded_in_full(
        self, running, premium_tariff, viewer_client, memory_provider
    ):
        subscription = running(card=AUTHENTICATES)
        upgrade(viewer_client("alice"), subscription)
        subscription_cancel(subscription=subscription, at=TEN_DAYS_IN)
        checkout = CheckoutSession.objects.get(payment__kind=PaymentKind.CHANGE)
        memory_provider.pay(checkout.provider_session_id, AUTHENTICATES)
        memory_provider.authenticate(checkout.provider_session_id)
        checkout_sync(provider_session_id=checkout.provider_session_id)

        assert Subscription.objects.get(pk=subscription.pk).tariff.slug == "monthly"
        payment = Payment.objects.get(kind=PaymentKind.CHANGE)
        assert payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)
        refund = Refund.objects.get(payment=payment)
        assert refund.amount == payment.amount == 13548
        assert PlanChange.objects.get().status == PlanChangeStatus.ABANDONED


@pytest.mark.django_db
class TestDeclined:
    def test_nothing_changes_and_the_decline_is_answered(
        self, running, premium_tariff, viewer_client, memory_provider
    ):
        subscription = running(card=DECLINES_LATER)
        client = viewer_client("alice")
        answer = upgrade(client, subscription)
        assert answer.status_code == 402
        error = answer.json()["error"]
        assert error["code"] == "card_declined" and error["message"]
        assert error["details"]["decline_code"]
        fresh = Subscription.objects.get(pk=subscription.pk)
        assert (fresh.tariff.slug, fresh.amount) == ("monthly", 39900)
        payment = Payment.objects.get(kind=PaymentKind.CHANGE)
        assert (payment.status, payment.failed_attempts) == (PaymentStatus.FAILED, 1)

        # Trying again is a new attempt, with a new key (a provider replays a stored decline).
        assert upgrade(client, subscription).status_code == 402
        keys = change_charges(memory_provider)
        assert [key.rsplit(":", 1)[1] for key in keys] == ["0", "1"]
        assert Payment.objects.filter(kind=PaymentKind.CHANGE).count() == 1


@pytest.mark.django_db
class TestLostAnswer:
    def test_a_charge_settled_later_by_its_event_applies_the_change_once(
        self, running, premium_tariff, viewer_client, memory_provider, monkeypatch
    ):
        """The provider charged but its answer was lost: the payment stays pending, and the
        event (or reconciliation) books it; the viewer's retry then finds it applied."""
        from payments.gateways.errors import GatewayError
        from payments.gateways.memory import MemoryGateway

        subscription = running()
        real_charge = MemoryGateway.charge_off_session

        def charge_then_lose_the_answer(self, charge):
            real_charge(self, charge)
            raise GatewayError("timed out", retryable=True)

        monkeypatch.setattr(MemoryGateway, "charge_off_session", charge_then_lose_the_answer)
        client = viewer_client("alice")
        answer = upgrade(client, subscription)
        assert (answer.status_code, answer.json()["error"]["code"]) == (503, "payment_provider_unavailable")
        payment = Payment.objects.get(kind=PaymentKind.CHANGE)
        assert payment.status == PaymentStatus.PENDING
        assert Subscription.objects.get(pk=subscription.pk).tariff.slug == "monthly"

        intent = next(
            i for i in memory_provider.payment_intents() if i.metadata.get("payment_id") == str(payment.pk)
        )
        plan_change_apply_intent(payment=payment, intent=intent)
        plan_change_apply_intent(payment=payment, intent=intent)  # a second delivery changes nothing
        monkeypatch.setattr(MemoryGateway, "charge_off_session", real_charge)
        assert upgrade(client, subscription).json()["status"] == "applied"

        assert Subscription.objects.get(pk=subscription.pk).tariff_id == premium_tariff.pk
        assert (
            Payment.objects.get(pk=change_payment_id(payment.idempotency_key)).status
            == PaymentStatus.SUCCEEDED
        )
        assert len([c for c in memory_provider.charges() if c.amount == 13548]) == 1
        assert not Refund.objects.exists()


@pytest.mark.django_db
def test_the_ledger_books_the_change_and_earns_it_from_now_to_the_period_end(
    running, premium_tariff, viewer_client
):
    from datetime import date

    from ledger.models import JournalEntry, RecognitionPlan

    subscription = running()
    upgrade(viewer_client("alice"), subscription)
    payment = Payment.objects.get(kind=PaymentKind.CHANGE)
    plan = RecognitionPlan.objects.get(payment=payment)
    assert (plan.start_day, plan.end_day, plan.base_amount) == (date(2027, 1, 11), date(2027, 2, 1), 13548)
    assert JournalEntry.objects.filter(source=f"payment:{payment.pk}").count() == 1
