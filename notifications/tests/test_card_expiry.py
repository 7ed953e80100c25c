"""Viewers whose saved card expires before the next renewal are warned once, with a link to replace it."""

from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.core import mail
from django.db import connection
from django.utils.html import strip_tags

from accounts.models import BillingAccount
from billing.models import Subscription
from core import clock
from notifications.emails import notice_render
from notifications.models import Notice, NoticeKind
from notifications.services.card_expiry import card_expiry_notices_record, card_valid_until
from notifications.services.notices import notices_dispatch
from notifications.tasks import record_card_expiry_notices
from payments.models import CheckoutMode, CheckoutSession, ProviderCustomer
from payments.services.checkout import checkout_sync
from payments.tests.concurrency import run_concurrently

K = NoticeKind
NBSP = "\u00a0"
FACTS = {
    "tariff_name": "Monthly",
    "renews_at": "2027-04-01T09:00:00Z",
    "amount": 39900,
    "currency": "RUB",
    "card_brand": "visa",
    "card_last4": "4242",
    "card_exp_month": 3,
    "card_exp_year": 2027,
    "update_url": "https://cinema.example/account/",
}


def shown(html: str) -> str:
    return " ".join(unescape(strip_tags(html)).replace(NBSP, "\0").split()).replace("\0", NBSP)


def expiring_this_month() -> str:
    """Return a card expiry (MM/YY) that ends before a monthly subscription started now renews."""
    now = clock.now()
    return f"{now.month:02d}/{now.year % 100:02d}"


@pytest.fixture
def subscribed_with_card(paid_subscription, memory_provider, viewer_client):
    """Return a function that subscribes "alice" monthly and saves a Visa of expiry `exp` for her renewals."""

    def subscribe(exp: str) -> Subscription:
        subscription = paid_subscription()
        # The card is replaced on a card-update page, as the viewer would, to choose its expiry.
        client = viewer_client("alice", "alice@example.com")
        url = client.post("/api/v1/payment-method/update/").json()["checkout_url"]
        checkout = CheckoutSession.objects.get(mode=CheckoutMode.CARD_UPDATE, url=url)
        assert checkout.provider_session_id is not None
        memory_provider.gateway.pay_checkout(checkout.provider_session_id, "4242424242424242", exp=exp)
        checkout_sync(provider_session_id=checkout.provider_session_id, provider=checkout.provider)
        BillingAccount.objects.filter(pk=subscription.account_id).update(email="alice@example.com")
        return subscription

    return subscribe


def move_to_days_before_renewal(subscription: Subscription, days: int) -> None:
    assert subscription.current_period_end is not None
    clock.advance(subscription.current_period_end - timedelta(days=days) - clock.now())


class TestTheEmail:
    @pytest.mark.parametrize(
        ("language", "facts"),
        [
            (
                "en",
                [
                    "renews on 1 April 2027",
                    "399.00 RUB",
                    "Visa •••• 4242",
                    "valid only through 03/2027",
                    "https://cinema.example/account/",
                ],
            ),
            (
                "ru",
                [
                    "продлится 1 апреля 2027",
                    f"399,00{NBSP}₽",
                    "Visa •••• 4242",
                    "действует только до 03/2027",
                    "https://cinema.example/account/",
                ],
            ),
        ],
    )
    def test_it_names_the_card_the_renewal_and_the_link_in_the_readers_language(self, language, facts):
        email = notice_render(Notice(kind=K.CARD_EXPIRING, context=FACTS), language=language)
        assert email.language == language
        for fact in facts:
            assert fact in email.text, fact
            assert fact in shown(email.html), fact
        assert 'href="https://cinema.example/account/"' in email.html
        for output in (email.subject, email.text, email.html):
            assert "{{" not in output and "None" not in output
        assert "Monthly" in email.subject and "\n" not in email.subject

    def test_a_card_works_through_its_expiry_month(self):
        assert card_valid_until(exp_month=3, exp_year=2027) == datetime(2027, 4, 1, tzinfo=UTC)
        assert card_valid_until(exp_month=12, exp_year=2027) == datetime(2028, 1, 1, tzinfo=UTC)


@pytest.mark.django_db
class TestTheDailyJob:
    def test_the_viewer_is_warned_once_however_often_the_job_runs(self, subscribed_with_card, settings):
        settings.CARD_UPDATE_URL = "https://cinema.example/account/"
        subscription = subscribed_with_card(expiring_this_month())
        move_to_days_before_renewal(subscription, 10)

        assert record_card_expiry_notices() == 1
        assert record_card_expiry_notices() == 0  # the next day's run, or a rerun
        notices_dispatch()
        notices_dispatch()

        assert Notice.objects.filter(kind=K.CARD_EXPIRING).count() == 1
        [email] = [m for m in mail.outbox if m.extra_headers["X-Billing-Notice-Kind"] == K.CARD_EXPIRING]
        assert email.to == ["alice@example.com"]
        assert "https://cinema.example/account/" in email.body
        assert "Visa •••• 4242" in email.body

    def test_not_before_the_renewal_is_near(self, subscribed_with_card):
        subscription = subscribed_with_card(expiring_this_month())
        move_to_days_before_renewal(subscription, 20)
        assert card_expiry_notices_record(now=clock.now()) == 0

    def test_a_card_valid_at_the_renewal_is_not_warned_about(self, subscribed_with_card):
        later = clock.now() + timedelta(days=70)
        subscription = subscribed_with_card(f"{later.month:02d}/{later.year % 100}")
        move_to_days_before_renewal(subscription, 10)
        assert card_expiry_notices_record(now=clock.now()) == 0

    def test_a_subscription_that_will_not_renew_is_not_warned_about(self, subscribed_with_card):
        subscription = subscribed_with_card(expiring_this_month())
        Subscription.objects.filter(pk=subscription.pk).update(autopay=False)
        move_to_days_before_renewal(subscription, 10)
        assert card_expiry_notices_record(now=clock.now()) == 0

    def test_another_expiring_card_saved_since_is_warned_about_again(self, subscribed_with_card):
        subscription = subscribed_with_card(expiring_this_month())
        move_to_days_before_renewal(subscription, 10)
        assert card_expiry_notices_record(now=clock.now()) == 1
        # The viewer saves another card, also expiring before the renewal.
        ProviderCustomer.objects.filter(account=subscription.account).update(payment_method_ref="pm_another")
        assert card_expiry_notices_record(now=clock.now()) == 1
        assert card_expiry_notices_record(now=clock.now()) == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_job_at_once_record_one_warning(subscribed_with_card):
    assert connection.vendor == "postgresql"
    subscription = subscribed_with_card(expiring_this_month())
    move_to_days_before_renewal(subscription, 10)
    now = clock.now()
    recorded = run_concurrently(lambda _: card_expiry_notices_record(now=now), 4)
    assert sum(recorded) == 1
    assert Notice.objects.filter(kind=K.CARD_EXPIRING, subscription=subscription).count() == 1
