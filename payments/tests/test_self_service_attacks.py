"""Issue 14's self-service write paths, attacked: lost answers, crashes, refunds, races and other viewers.

Each test is one attack. A test that passes documents a defence; one marked
`xfail(strict=True, reason="BUG: ...")` records a bug found, so the suite stays green until it is fixed
(and fails, telling the fixer to drop the mark, once it is).
"""

# The fixtures imported from plan_change_setup are named again as test arguments, as pytest wants.
# ruff: noqa: F811

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.db import connection
from django.db.models import Sum

from billing.models import PlanChange, PlanChangeStatus, Subscription
from billing.services import subscription_cancel, subscription_resume
from billing.tests.plan_change_setup import (  # noqa: F401 (fixtures)
    PERIOD_END,
    PERIOD_START,
    frozen_clock,
    in_known_period,
    premium_tariff,
    yearly_tariff,
)
from payments.gateways.base import CreatedRange
from payments.gateways.errors import GatewayError
from payments.gateways.memory import MemoryGateway
from payments.models import (
    PAID_STATUSES,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    Refund,
)
from payments.services import plan_change as plan_change_service
from payments.services.action_links import ACTION_LINK_SALT, action_link_token
from payments.services.checkout import checkout_sync
from payments.services.reconciliation import reconcile_unbooked_charges
from tariffs.models import Tariff
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.usefixtures("memory_provider")
TEN_DAYS_IN = datetime(2027, 1, 11, tzinfo=UTC)
PREMIUM_DUE = 13548  # round((59900 - 39900) * 1814400 / 2678400)
GOLD_DUE = 27097  # round((79900 - 39900) * 1814400 / 2678400)
AUTHENTICATES = "4000002760003184"  # pays at checkout after 3-D Secure; off-session asks for it again
# The provider's charges are stamped with its own clock (the real one here): look at all of them.
EVERY_CHARGE = CreatedRange(start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def gold_tariff() -> Tariff:
    return TariffFactory.create(slug="gold", name="Gold", amount=79900)


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


def change_charges_taken(memory_provider) -> list[int]:
    """Return the amounts of the succeeded charges (off-session or on a bank's page) of change payments."""
    changes = {str(pk) for pk in Payment.objects.filter(kind=PaymentKind.CHANGE).values_list("pk", flat=True)}
    intents = [i for i in memory_provider.payment_intents() if i.metadata.get("payment_id") in changes]
    return [i.amount for i in intents if i.status == "succeeded"]


def money_kept_for_changes(memory_provider) -> int:
    """Return what the provider took for plan changes, less every refund made or under way for them."""
    taken = sum(change_charges_taken(memory_provider))
    refunded = Refund.objects.filter(payment__kind=PaymentKind.CHANGE).aggregate(total=Sum("amount"))["total"]
    return taken - (refunded or 0)


def pay_the_bank_page(memory_provider, payment: Payment) -> None:
    """The viewer confirms a change on the bank's page; the result page settles it."""
    checkout = CheckoutSession.objects.filter(payment=payment).order_by("-created_at").first()
    assert checkout is not None and checkout.provider_session_id
    memory_provider.pay(checkout.provider_session_id, AUTHENTICATES)
    memory_provider.authenticate(checkout.provider_session_id)
    checkout_sync(provider_session_id=checkout.provider_session_id)


def lose_the_answers(monkeypatch) -> Callable[[], None]:
    """Make every off-session charge reach the provider, and its answer get lost; return the undo.

    (Not `monkeypatch.undo()`: that would unfreeze the billing clock too.)
    """
    real_charge = MemoryGateway.charge_off_session

    def charge_then_lose_the_answer(self, charge):
        real_charge(self, charge)
        raise GatewayError("timed out", retryable=True)

    monkeypatch.setattr(MemoryGateway, "charge_off_session", charge_then_lose_the_answer)
    return lambda: monkeypatch.setattr(MemoryGateway, "charge_off_session", real_charge)


def save_a_new_card(client, memory_provider, card: str = "4242424242424242") -> None:
    """The viewer replaces the card on file through the API's setup page."""
    answer = client.post("/api/v1/payment-method/update/")
    assert answer.status_code == 200, answer.json()
    page = CheckoutSession.objects.filter(mode="card_update").order_by("-created_at").first()
    assert page is not None and page.provider_session_id
    memory_provider.pay(page.provider_session_id, card)
    checkout_sync(provider_session_id=page.provider_session_id)


@pytest.mark.django_db
class TestRefundedChangeAskedAgain:
    def test_an_upgrade_asked_again_after_its_payment_was_refunded_is_paid_again(
        self, running, premium_tariff, viewer_client, memory_provider
    ):
        subscription = running(card=AUTHENTICATES)
        client = viewer_client("alice")
        assert upgrade(client, subscription).status_code == 202
        subscription_cancel(subscription=subscription, at=TEN_DAYS_IN)
        pay_the_bank_page(memory_provider, Payment.objects.get(kind=PaymentKind.CHANGE))
        assert Refund.objects.get(payment__kind=PaymentKind.CHANGE).amount == PREMIUM_DUE
        assert money_kept_for_changes(memory_provider) == 0

        subscription_resume(subscription=subscription, at=TEN_DAYS_IN)
        upgrade(client, subscription)

        fresh = Subscription.objects.get(pk=subscription.pk)
        # Premium for the rest of January is worth 135.48: the viewer on premium has paid it.
        if fresh.tariff_id == premium_tariff.pk:
            assert money_kept_for_changes(memory_provider) == PREMIUM_DUE
        else:
            assert money_kept_for_changes(memory_provider) == 0


@pytest.mark.django_db
class TestLostAnswers:
    def test_a_lost_charge_followed_by_a_new_attempt_is_refunded_not_kept(
        self, running, premium_tariff, viewer_client, memory_provider, monkeypatch
    ):
        subscription = running(card=AUTHENTICATES)
        client = viewer_client("alice")
        # The bank asks to confirm; the viewer lets the page expire.
        assert upgrade(client, subscription).status_code == 202
        page = CheckoutSession.objects.get(payment__kind=PaymentKind.CHANGE)
        memory_provider.gateway.expire_checkout_session(page.provider_session_id, "expire-for-the-test")
        checkout_sync(provider_session_id=page.provider_session_id)
        page.refresh_from_db()
        assert page.status == CheckoutStatus.EXPIRED

        # A card that needs no confirmation, then a retry whose charge is taken and its answer lost.
        save_a_new_card(client, memory_provider)
        answers_back = lose_the_answers(monkeypatch)
        answer = upgrade(client, subscription)
        assert (answer.status_code, answer.json()["error"]["code"]) == (503, "payment_provider_unavailable")
        answers_back()
        assert change_charges_taken(memory_provider) == [PREMIUM_DUE]

        # The expired page's event arrives again (a webhook retry, a reconciliation's re-read).
        checkout_sync(provider_session_id=page.provider_session_id)
        # The viewer retries, as the 503 told them to; then the hourly sweep runs.
        upgrade(client, subscription)
        reconcile_unbooked_charges(window=EVERY_CHARGE)

        assert Subscription.objects.get(pk=subscription.pk).tariff_id == premium_tariff.pk
        assert money_kept_for_changes(memory_provider) == PREMIUM_DUE

    def test_a_lost_charge_then_an_upgrade_to_a_third_tariff_is_refunded_by_the_sweep(
        self, running, premium_tariff, gold_tariff, viewer_client, memory_provider, monkeypatch
    ):
        subscription = running()
        client = viewer_client("alice")
        answers_back = lose_the_answers(monkeypatch)
        assert upgrade(client, subscription, "premium").status_code == 503
        answers_back()
        # The viewer changes their mind: gold instead.
        answer = upgrade(client, subscription, "gold")
        assert (answer.status_code, answer.json()["status"]) == (200, "applied")
        reconcile_unbooked_charges(window=EVERY_CHARGE)

        assert Subscription.objects.get(pk=subscription.pk).tariff_id == gold_tariff.pk
        assert sorted(change_charges_taken(memory_provider)) == [PREMIUM_DUE, GOLD_DUE]
        premium_payment = Payment.objects.get(kind=PaymentKind.CHANGE, amount=PREMIUM_DUE)
        assert Refund.objects.get(payment=premium_payment).amount == PREMIUM_DUE
        assert money_kept_for_changes(memory_provider) == GOLD_DUE
        statuses = dict(PlanChange.objects.values_list("to_tariff__slug", "status"))
        assert statuses == {"premium": PlanChangeStatus.ABANDONED, "gold": PlanChangeStatus.APPLIED}

    def test_a_crash_after_the_charge_before_the_commit_is_booked_by_the_sweep(
        self, running, premium_tariff, viewer_client, memory_provider, monkeypatch
    ):
        """The process dies after the provider charged and before our transaction committed."""
        subscription = running()

        def die(**kwargs):
            raise SystemExit("the worker was killed")

        real = plan_change_service.payment_mark_succeeded
        monkeypatch.setattr(plan_change_service, "payment_mark_succeeded", die)
        with pytest.raises(SystemExit):
            upgrade(viewer_client("alice"), subscription)
        monkeypatch.setattr(plan_change_service, "payment_mark_succeeded", real)
        payment = Payment.objects.get(kind=PaymentKind.CHANGE)
        assert (payment.status, payment.provider_payment_id) == (PaymentStatus.PENDING, None)
        assert change_charges_taken(memory_provider) == [PREMIUM_DUE]

        reconcile_unbooked_charges(window=EVERY_CHARGE)

        payment.refresh_from_db()
        assert payment.status == PaymentStatus.SUCCEEDED
        assert Subscription.objects.get(pk=subscription.pk).tariff_id == premium_tariff.pk
        assert PlanChange.objects.get().status == PlanChangeStatus.APPLIED
        assert not Refund.objects.exists()

    def test_a_crash_after_the_charge_then_a_cancel_is_refunded_in_full(
        self, running, premium_tariff, viewer_client, memory_provider, monkeypatch
    ):
        subscription = running()

        def die(**kwargs):
            raise SystemExit("the worker was killed")

        real = plan_change_service.payment_mark_succeeded
        monkeypatch.setattr(plan_change_service, "payment_mark_succeeded", die)
        with pytest.raises(SystemExit):
            upgrade(viewer_client("alice"), subscription)
        monkeypatch.setattr(plan_change_service, "payment_mark_succeeded", real)
        subscription_cancel(subscription=subscription, at=TEN_DAYS_IN)

        reconcile_unbooked_charges(window=EVERY_CHARGE)

        assert Subscription.objects.get(pk=subscription.pk).tariff.slug == "monthly"
        assert Refund.objects.get(payment__kind=PaymentKind.CHANGE).amount == PREMIUM_DUE
        assert money_kept_for_changes(memory_provider) == 0

    def test_a_crash_between_the_committed_rows_and_the_charge_charges_once_on_retry(
        self, running, premium_tariff, viewer_client, memory_provider, monkeypatch
    ):
        subscription = running()
        client = viewer_client("alice")

        def die(**kwargs):
            raise SystemExit("the worker was killed")

        real = plan_change_service._charge
        monkeypatch.setattr(plan_change_service, "_charge", die)
        with pytest.raises(SystemExit):
            upgrade(client, subscription)
        monkeypatch.setattr(plan_change_service, "_charge", real)
        assert Payment.objects.get(kind=PaymentKind.CHANGE).status == PaymentStatus.PENDING
        assert change_charges_taken(memory_provider) == []

        assert upgrade(client, subscription).json()["status"] == "applied"
        assert upgrade(client, subscription).json()["status"] == "applied"
        assert change_charges_taken(memory_provider) == [PREMIUM_DUE]


@pytest.mark.django_db
class TestTheBanksPage:
    def test_asking_again_after_the_page_expired_answers_a_live_page(
        self, running, premium_tariff, viewer_client, frozen_clock
    ):
        subscription = running(card=AUTHENTICATES)
        client = viewer_client("alice")
        first = upgrade(client, subscription).json()["payment_action_url"]
        later = datetime(2027, 1, 11, 3, tzinfo=UTC)  # three hours on: a page lives one
        frozen_clock(later)
        answer = upgrade(client, subscription)
        assert answer.status_code == 202
        url = answer.json()["payment_action_url"]
        page = CheckoutSession.objects.get(url=url)
        assert page.expires_at > later, f"answered the page of {first!r} again"

    def test_a_page_paid_after_the_renewal_is_refunded_and_the_renewal_stands(
        self, running, premium_tariff, viewer_client, memory_provider, frozen_clock
    ):
        from payments.services.renewals import renewal_run

        subscription = running(card=AUTHENTICATES)
        assert upgrade(viewer_client("alice"), subscription).status_code == 202
        # The renewal asks the bank too; the viewer confirms the renewal, then pays the old change page.
        frozen_clock(PERIOD_END + timedelta(minutes=1))
        renewal_run(subscription_id=subscription.pk)
        pay_the_bank_page(memory_provider, Payment.objects.get(kind=PaymentKind.CHANGE))

        fresh = Subscription.objects.get(pk=subscription.pk)
        assert fresh.tariff.slug == "monthly"
        assert money_kept_for_changes(memory_provider) == 0
        assert PlanChange.objects.get().status == PlanChangeStatus.ABANDONED


@pytest.mark.django_db
class TestTwoChangesAtOnce:
    def test_two_bank_pages_for_two_changes_both_paid_keep_one(
        self, running, premium_tariff, gold_tariff, viewer_client, memory_provider
    ):
        """Premium asks the bank, then gold asks too; the viewer pays both pages."""
        subscription = running(card=AUTHENTICATES)
        client = viewer_client("alice")
        assert upgrade(client, subscription, "premium").status_code == 202
        assert upgrade(client, subscription, "gold").status_code == 202
        premium_payment = Payment.objects.get(kind=PaymentKind.CHANGE, amount=PREMIUM_DUE)
        gold_payment = Payment.objects.get(kind=PaymentKind.CHANGE, amount=GOLD_DUE)
        pay_the_bank_page(memory_provider, gold_payment)
        pay_the_bank_page(memory_provider, premium_payment)

        assert Subscription.objects.get(pk=subscription.pk).tariff_id == gold_tariff.pk
        assert Refund.objects.get(payment=premium_payment).amount == PREMIUM_DUE
        assert not Refund.objects.filter(payment=gold_payment).exists()
        assert money_kept_for_changes(memory_provider) == GOLD_DUE


def _race(operations: dict[str, object]) -> dict[str, tuple[int, str]]:
    """Run each named callable at once in its own thread and connection; return status and code."""
    start = threading.Barrier(len(operations))

    def run(name: str) -> tuple[str, tuple[int, str]]:
        try:
            start.wait()
            answer = operations[name]()  # type: ignore[operator]
            body = answer.json()
            return name, (answer.status_code, body.get("status") or body.get("error", {}).get("code", ""))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(operations)) as pool:
        return dict(pool.map(run, operations))


def _books_balance(subscription: Subscription, memory_provider) -> None:
    """Assert what any racing mix must leave: the tariff the money paid for, and no money without a home."""
    fresh = Subscription.objects.get(pk=subscription.pk)
    applied = list(PlanChange.objects.filter(subscription=subscription, status=PlanChangeStatus.APPLIED))
    kept = money_kept_for_changes(memory_provider)
    if applied:
        # Two upgrades the lock ran one after the other both apply (monthly -> premium, then
        # premium -> gold): each from the tariff the one before moved to, each paid once.
        by_from = {change.from_tariff.slug: change for change in applied}
        assert len(by_from) == len(applied)
        chain, slug = [], "monthly"
        while slug in by_from:
            chain.append(by_from[slug])
            slug = by_from[slug].to_tariff.slug
        assert len(chain) == len(applied)
        assert fresh.tariff_id == chain[-1].to_tariff_id
        assert kept == sum(change.amount_due for change in applied)
    else:
        assert fresh.tariff.slug == "monthly"
        assert kept == 0
    for payment in Payment.objects.filter(kind=PaymentKind.CHANGE, status__in=PAID_STATUSES):
        change = PlanChange.objects.get(key=payment.idempotency_key)
        assert change.status == PlanChangeStatus.APPLIED or Refund.objects.filter(payment=payment).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rounds", range(3))
def test_an_upgrade_racing_another_upgrade_a_downgrade_and_a_cancel_leaves_consistent_books(
    rounds, running, premium_tariff, gold_tariff, viewer_client, memory_provider
):
    assert connection.vendor == "postgresql"
    basic = TariffFactory.create(slug="basic", name="Basic", amount=19900)
    subscription = running()
    path = f"/api/v1/subscriptions/{subscription.pk}"

    outcomes = _race(
        {
            "premium": lambda: upgrade(viewer_client("alice"), subscription, "premium"),
            "gold": lambda: upgrade(viewer_client("alice"), subscription, "gold"),
            "basic": lambda: upgrade(viewer_client("alice"), subscription, basic.slug),
            "cancel": lambda: viewer_client("alice").post(f"{path}/cancel/"),
            "withdraw": lambda: viewer_client("alice").delete(f"{path}/change/"),
        }
    )

    assert all(status < 500 for status, _ in outcomes.values()), outcomes
    _books_balance(subscription, memory_provider)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_upgrades_the_bank_wants_confirmed_open_one_page(
    running, premium_tariff, viewer_client, memory_provider
):
    subscription = running(card=AUTHENTICATES)
    racers = 8
    start = threading.Barrier(racers)

    def request(_: int) -> tuple[int, str | None]:
        try:
            start.wait()
            answer = upgrade(viewer_client("alice"), subscription)
            return answer.status_code, answer.json().get("payment_action_url")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=racers) as pool:
        outcomes = list(pool.map(request, range(racers)))

    assert {status for status, _ in outcomes} == {202}, outcomes
    assert len({url for _, url in outcomes}) == 1 and outcomes[0][1]
    assert CheckoutSession.objects.filter(payment__kind=PaymentKind.CHANGE).count() == 1
    assert len(memory_provider.checkout_sessions()) == 2  # the first subscribe's page and this one
    keys = [
        key for _, key in memory_provider.calls("charge_off_session") if key and key.startswith("change:")
    ]
    assert len(set(keys)) == 1


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_racing_a_card_update_and_the_bank_page_settlement_does_not_deadlock(
    running, premium_tariff, viewer_client, memory_provider
):
    """Account-first (card page, checkout settlement) and subscription-first (plan change) writers at once."""
    subscription = running(card=AUTHENTICATES)
    client = viewer_client("alice")
    assert upgrade(client, subscription).status_code == 202
    page = CheckoutSession.objects.get(payment__kind=PaymentKind.CHANGE)
    memory_provider.pay(page.provider_session_id, AUTHENTICATES)
    memory_provider.authenticate(page.provider_session_id)

    class _Synced:
        status_code = 200

        @staticmethod
        def json() -> dict[str, str]:
            return {"status": "synced"}

    def settle():
        checkout_sync(provider_session_id=page.provider_session_id)
        return _Synced()

    outcomes = _race(
        {
            "again": lambda: upgrade(viewer_client("alice"), subscription),
            "card": lambda: viewer_client("alice").post("/api/v1/payment-method/update/"),
            "settle": settle,
        }
    )

    assert all(status < 500 for status, _ in outcomes.values()), outcomes
    assert Subscription.objects.get(pk=subscription.pk).tariff_id == premium_tariff.pk
    assert money_kept_for_changes(memory_provider) == PREMIUM_DUE


@pytest.mark.django_db
class TestOtherViewers:
    def test_another_viewer_can_neither_change_preview_nor_withdraw_a_plan(
        self, running, premium_tariff, viewer_client, memory_provider
    ):
        subscription = running()
        bob = viewer_client("bob")
        path = f"/api/v1/subscriptions/{subscription.pk}/change/"
        answers = [
            bob.post(path, {"tariff": "premium"}, format="json"),
            bob.post(path, {"tariff": "premium", "preview": True}, format="json"),
            bob.delete(path),
        ]
        assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(404, "not_found")] * 3
        assert not PlanChange.objects.exists()
        assert change_charges_taken(memory_provider) == []

    def test_another_viewer_sees_neither_the_card_nor_the_refunds_nor_the_change_payment(
        self, running, premium_tariff, viewer_client, memory_provider
    ):
        subscription = running(card=AUTHENTICATES)
        alice = viewer_client("alice")
        upgrade(alice, subscription)
        subscription_cancel(subscription=subscription, at=TEN_DAYS_IN)
        pay_the_bank_page(memory_provider, Payment.objects.get(kind=PaymentKind.CHANGE))
        change_payment = Payment.objects.get(kind=PaymentKind.CHANGE)
        assert alice.get("/api/v1/payment-method/").status_code == 200
        assert alice.get("/api/v1/refunds/").json()["count"] == 1

        bob = viewer_client("bob")
        assert bob.get("/api/v1/payment-method/").json()["error"]["code"] == "no_payment_method"
        assert bob.get("/api/v1/refunds/").json()["count"] == 0
        assert bob.get("/api/v1/refund-requests/").json()["count"] == 0
        assert bob.get(f"/api/v1/payments/{change_payment.pk}/").status_code == 404
        answer = bob.post(
            f"/api/v1/payments/{change_payment.pk}/refund-request/", {"reason": "mine"}, format="json"
        )
        assert answer.status_code == 404
        assert bob.post("/api/v1/payment-method/update/").json()["error"]["code"] == "no_subscription"

    def test_the_card_answer_carries_no_more_than_brand_last4_and_expiry(self, running, viewer_client):
        running()
        body = viewer_client("alice").get("/api/v1/payment-method/").json()
        assert set(body) == {"provider", "brand", "last4", "exp_month", "exp_year"}
        assert len(body["last4"]) == 4


@pytest.mark.django_db
class TestActionLinkTokens:
    def test_a_token_cannot_be_moved_to_another_payment(self, running, premium_tariff, viewer_client, client):
        subscription = running(card=AUTHENTICATES)
        upgrade(viewer_client("alice"), subscription)
        first = Payment.objects.get(kind=PaymentKind.INITIAL)
        other = Payment.objects.get(kind=PaymentKind.CHANGE)
        _, first_signature = action_link_token(payment_id=first.pk).rsplit(":", 1)
        moved = f"{other.pk.hex}:{first_signature}"
        assert client.get(f"/pay/{moved}/").status_code == 404
        assert client.get(f"/pay/{action_link_token(payment_id=first.pk)}x/").status_code == 404

    def test_a_signature_made_for_another_purpose_is_refused(self, running, client):
        running()
        payment = Payment.objects.get(kind=PaymentKind.INITIAL)
        elsewhere = signing.Signer().sign(payment.pk.hex)
        assert client.get(f"/pay/{elsewhere}/").status_code == 404
        salted = signing.Signer(salt=ACTION_LINK_SALT).sign(payment.pk.hex)
        assert client.get(f"/pay/{salted}/").status_code == 200  # the real one: already paid

    def test_the_link_of_a_change_payment_opens_no_page(self, running, premium_tariff, viewer_client, client):
        """A change waiting for the bank is paid on its own page; its id signed is no second way to pay it."""
        subscription = running(card=AUTHENTICATES)
        upgrade(viewer_client("alice"), subscription)
        payment = Payment.objects.get(kind=PaymentKind.CHANGE)
        pages_before = CheckoutSession.objects.filter(payment=payment).count()
        answer = client.get(f"/pay/{action_link_token(payment_id=payment.pk)}/")
        assert answer.status_code == 200
        assert CheckoutSession.objects.filter(payment=payment).count() == pages_before
