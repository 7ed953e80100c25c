"""The viewer's card on file: read it, replace it on a provider page, and renewals follow it."""

from datetime import timedelta

import pytest

from billing.models import Subscription, SubscriptionStatus
from core import clock
from payments.models import (
    CheckoutMode,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    ProviderCustomer,
)
from payments.services.checkout import checkout_sync
from payments.services.renewals import RenewalOutcome, renewal_run, renewals_due
from payments.tests.factories import ProviderCustomerFactory

pytestmark = pytest.mark.django_db
S = SubscriptionStatus
URL = "/api/v1/payment-method/"
UPDATE_URL = "/api/v1/payment-method/update/"
MASTERCARD = "5555555555554444"
DECLINES_LATER = "4000000000000341"  # pays at checkout, every later charge is declined


@pytest.fixture
def queued(monkeypatch) -> list[tuple[str, tuple]]:
    """Record the tasks queued after commit instead of sending them to the broker."""
    calls: list[tuple[str, tuple]] = []

    def record(task, *args, fallback):
        calls.append((task.name, args))
        return True

    monkeypatch.setattr("core.queueing.enqueue_quietly", record)
    return calls


def update_card(client, memory_provider, card: str, *, exp: str | None = None) -> CheckoutSession:
    """Ask for the card-update page, save `card` on it and settle it as the return page does."""
    answer = client.post(UPDATE_URL)
    assert answer.status_code == 200, answer.json()
    checkout = CheckoutSession.objects.get(mode=CheckoutMode.CARD_UPDATE, url=answer.json()["checkout_url"])
    assert checkout.provider_session_id is not None
    assert (
        memory_provider.gateway.pay_checkout(checkout.provider_session_id, card, exp=exp).outcome
        == "succeeded"
    )
    checkout_sync(provider_session_id=checkout.provider_session_id, provider=checkout.provider)
    checkout.refresh_from_db()
    return checkout


class TestReadTheCard:
    def test_answers_the_card_saved_for_the_running_subscription(
        self, memory_provider, paid_subscription, viewer_client
    ):
        paid_subscription()
        body = viewer_client("alice").get(URL).json()
        saved = ProviderCustomer.objects.get(account__user_id="alice")
        assert body == {
            "provider": "stripe",
            "brand": "visa",
            "last4": "4242",
            "exp_month": saved.card_exp_month,
            "exp_year": saved.card_exp_year,
        }
        assert saved.card_exp_month == 12
        assert saved.card_exp_year >= clock.now().year

    def test_no_saved_card_is_404_no_payment_method(self, viewer_client):
        answer = viewer_client("bob").get(URL)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "no_payment_method"

    def test_a_customer_without_a_saved_method_is_404(self, viewer_client):
        # A customer at the provider whose checkout saved no card (autopay was off).
        ProviderCustomerFactory(account__user_id="carol", payment_method_ref="")
        assert viewer_client("carol").get(URL).status_code == 404

    def test_another_viewers_card_is_never_shown(self, memory_provider, paid_subscription, viewer_client):
        paid_subscription("alice")
        answer = viewer_client("mallory").get(URL)
        assert answer.status_code == 404
        assert "4242" not in answer.content.decode()

    @pytest.mark.parametrize(("method", "url"), [("get", URL), ("post", UPDATE_URL)])
    def test_without_a_token_it_is_401(self, api_client, method, url):
        answer = getattr(api_client, method)(url)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "not_authenticated"


class TestReplaceTheCard:
    def test_the_page_saves_a_card_without_a_charge(self, memory_provider, paid_subscription, viewer_client):
        subscription = paid_subscription()
        client = viewer_client("alice")
        answer = client.post(UPDATE_URL)
        assert answer.status_code == 200
        checkout = CheckoutSession.objects.get(mode=CheckoutMode.CARD_UPDATE)
        assert answer.json() == {"checkout_url": checkout.url}
        page = next(s for s in memory_provider.checkout_sessions() if s.id == checkout.provider_session_id)
        assert page.amount_total is None  # setup mode: nothing to pay on it
        assert page.customer_id == ProviderCustomer.objects.get(account__user_id="alice").customer_ref
        assert checkout.subscription_id == subscription.pk and checkout.payment_id is None

    def test_a_double_click_gets_the_same_page(self, memory_provider, paid_subscription, viewer_client):
        paid_subscription()
        client = viewer_client("alice")
        first, second = client.post(UPDATE_URL).json(), client.post(UPDATE_URL).json()
        assert first == second
        assert CheckoutSession.objects.filter(mode=CheckoutMode.CARD_UPDATE).count() == 1
        update_pages = [s for s in memory_provider.checkout_sessions() if s.amount_total is None]
        assert len(update_pages) == 1

    def test_a_page_about_to_expire_is_replaced_by_a_new_one(
        self, memory_provider, paid_subscription, viewer_client
    ):
        paid_subscription()
        client = viewer_client("alice")
        first = client.post(UPDATE_URL).json()
        CheckoutSession.objects.filter(mode=CheckoutMode.CARD_UPDATE).update(
            expires_at=clock.now() + timedelta(minutes=2)
        )
        assert client.post(UPDATE_URL).json() != first
        assert CheckoutSession.objects.filter(mode=CheckoutMode.CARD_UPDATE).count() == 2

    def test_without_a_running_subscription_it_is_409(self, viewer_client):
        answer = viewer_client("bob").post(UPDATE_URL)
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "no_subscription"
        assert not CheckoutSession.objects.exists()

    def test_the_new_card_is_saved_and_nothing_else_changes(
        self, memory_provider, paid_subscription, viewer_client
    ):
        subscription = paid_subscription()
        before = (subscription.status, subscription.current_period_start, subscription.current_period_end)
        client = viewer_client("alice")
        checkout = update_card(client, memory_provider, MASTERCARD, exp="03/31")
        assert checkout.status == CheckoutStatus.COMPLETE
        assert client.get(URL).json() == {
            "provider": "stripe",
            "brand": "mastercard",
            "last4": "4444",
            "exp_month": 3,
            "exp_year": 2031,
        }
        subscription.refresh_from_db()
        assert (
            subscription.status,
            subscription.current_period_start,
            subscription.current_period_end,
        ) == before
        assert Payment.objects.filter(subscription=subscription).count() == 1  # the first payment only
        assert len(memory_provider.payment_intents()) == 1  # and no charge of the card update
        # Settled again (the webhook after the return page): still one card, nothing more.
        checkout_sync(provider_session_id=checkout.provider_session_id, provider=checkout.provider)
        assert ProviderCustomer.objects.filter(account__user_id="alice").count() == 1
        assert client.get(URL).json()["last4"] == "4444"

    def test_a_viewer_without_a_card_on_file_can_add_one(
        self, memory_provider, monthly_tariff, viewer_client
    ):
        client = viewer_client("alice")
        body = client.post(
            "/api/v1/subscriptions/", {"tariff": "monthly", "autopay": False}, format="json"
        ).json()
        first = CheckoutSession.objects.get(pk=body["checkout"]["id"])
        memory_provider.pay(first.provider_session_id)
        checkout_sync(provider_session_id=first.provider_session_id)
        assert client.get(URL).json()["error"]["code"] == "no_payment_method"  # autopay off: none kept

        update_card(client, memory_provider, MASTERCARD)
        assert client.get(URL).json()["last4"] == "4444"

    def test_a_late_settlement_of_an_older_page_keeps_the_newer_card(
        self, memory_provider, paid_subscription, viewer_client
    ):
        paid_subscription()
        client = viewer_client("alice")
        older = update_card(client, memory_provider, MASTERCARD)
        update_card(client, memory_provider, "4000056655665556")  # a visa debit, saved later
        checkout_sync(provider_session_id=older.provider_session_id, provider=older.provider)
        assert client.get(URL).json()["brand"] == "visa"

    def test_an_expired_page_changes_nothing(self, memory_provider, paid_subscription, viewer_client):
        subscription = paid_subscription()
        client = viewer_client("alice")
        client.post(UPDATE_URL)
        checkout = CheckoutSession.objects.get(mode=CheckoutMode.CARD_UPDATE)
        memory_provider.gateway.expire_checkout_session(checkout.provider_session_id, idempotency_key="t")
        checkout_sync(provider_session_id=checkout.provider_session_id, provider=checkout.provider)
        checkout.refresh_from_db()
        subscription.refresh_from_db()
        assert checkout.status == CheckoutStatus.EXPIRED
        assert subscription.status == S.ACTIVE
        assert client.get(URL).json()["last4"] == "4242"

    def test_a_trialing_subscription_gets_no_second_trial_from_the_page(self, memory_provider, viewer_client):
        from tariffs.tests.factories import TariffFactory

        TariffFactory(slug="yearly", amount=399000, currency="RUB", period_unit="year", trial_days=7)
        client = viewer_client("alice")
        body = client.post("/api/v1/subscriptions/", {"tariff": "yearly"}, format="json").json()
        trial_page = CheckoutSession.objects.get(pk=body["checkout"]["id"])
        memory_provider.pay(trial_page.provider_session_id)
        checkout_sync(provider_session_id=trial_page.provider_session_id)
        subscription = trial_page.subscription
        subscription.refresh_from_db()
        assert subscription.status == S.TRIALING
        trial_end = subscription.current_period_end
        update_card(client, memory_provider, MASTERCARD)
        subscription.refresh_from_db()
        assert (subscription.status, subscription.current_period_end) == (S.TRIALING, trial_end)
        assert client.get(URL).json()["last4"] == "4444"


class TestRenewalsFollowTheNewCard:
    def test_the_renewal_after_an_update_charges_the_new_card(
        self, memory_provider, paid_subscription, viewer_client
    ):
        subscription = paid_subscription()
        update_card(viewer_client("alice"), memory_provider, MASTERCARD)
        new_method = ProviderCustomer.objects.get(account__user_id="alice").payment_method_ref
        clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        charge = memory_provider.payment_intents()[-1]
        assert (charge.payment_method_id, charge.status) == (new_method, "succeeded")
        renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        assert (renewal.card_brand, renewal.card_last4) == ("mastercard", "4444")

    def test_a_past_due_subscription_is_retried_at_once_with_the_new_card(
        self, memory_provider, paid_subscription, viewer_client, queued, django_capture_on_commit_callbacks
    ):
        subscription = paid_subscription(card=DECLINES_LATER)
        clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
        subscription.refresh_from_db()
        assert subscription.status == S.PAST_DUE
        assert subscription.next_renewal_attempt_at > clock.now()  # the dunning schedule's next day
        assert renewals_due(now=clock.now(), limit=10) == []

        with django_capture_on_commit_callbacks(execute=True):
            update_card(viewer_client("alice"), memory_provider, MASTERCARD)
        subscription.refresh_from_db()
        assert subscription.next_renewal_attempt_at <= clock.now()
        assert queued == [("billing.tasks.renew_subscription", (str(subscription.pk),))]
        # What the queued task runs: the renewal, charged to the new card under a new key.
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        subscription.refresh_from_db()
        assert subscription.status == S.ACTIVE
        renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        assert (renewal.status, renewal.card_last4, renewal.failed_attempts) == ("succeeded", "4444", 1)

    def test_an_active_subscription_is_not_charged_early(
        self, memory_provider, paid_subscription, viewer_client, queued, django_capture_on_commit_callbacks
    ):
        subscription = paid_subscription()
        with django_capture_on_commit_callbacks(execute=True):
            update_card(viewer_client("alice"), memory_provider, MASTERCARD)
        assert queued == []
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.NOT_DUE

    def test_a_renewal_waiting_for_the_bank_is_left_to_its_own_page(
        self, memory_provider, paid_subscription, viewer_client, queued, django_capture_on_commit_callbacks
    ):
        subscription = paid_subscription()
        clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
        ProviderCustomer.objects.filter(account__user_id="alice").update(payment_method_ref="")
        Payment.objects.create(
            subscription=subscription,
            kind=PaymentKind.RENEWAL,
            amount=subscription.amount,
            currency=subscription.currency,
            provider="stripe",
            status="failed",
            failure_code="authentication_required",
            period_start=subscription.current_period_end,
            period_end=subscription.current_period_end + timedelta(days=30),
            idempotency_key="renewal-waiting-for-the-bank",
        )
        Subscription.objects.filter(pk=subscription.pk).update(
            status=S.PAST_DUE, next_renewal_attempt_at=None
        )
        with django_capture_on_commit_callbacks(execute=True):
            update_card(viewer_client("alice"), memory_provider, MASTERCARD)
        subscription.refresh_from_db()
        assert subscription.next_renewal_attempt_at is None
        assert queued == []
        assert viewer_client("alice").get(URL).json()["last4"] == "4444"
