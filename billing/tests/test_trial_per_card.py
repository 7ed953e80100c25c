"""One free trial per card, whichever account saves it (the provider's card fingerprint)."""

from datetime import timedelta

import pytest

from billing.models import Subscription, SubscriptionStatus
from core import clock
from payments.models import CheckoutSession, Payment, PaymentStatus
from payments.services.checkout import checkout_sync
from payments.services.renewals import RenewalOutcome, renewal_run
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_trial():
    return TariffFactory(slug="yearly", amount=399000, currency="RUB", period_unit="year", trial_days=7)


def start_trial(viewer_client, provider, user_id: str, card: str) -> Subscription:
    body = viewer_client(user_id).post("/api/v1/subscriptions/", {"tariff": "yearly"}, format="json").json()
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    assert checkout.mode == "setup"  # nothing is charged on the page: it saves the card
    assert provider.pay(checkout.provider_session_id, card).outcome == "succeeded"
    checkout_sync(provider_session_id=checkout.provider_session_id or "")
    return Subscription.objects.get(pk=checkout.subscription_id)


def test_a_card_that_had_a_trial_on_another_account_pays_at_once(viewer_client, memory_provider, with_trial):
    first = start_trial(viewer_client, memory_provider, "first", "4242 4242 4242 4242")
    assert first.status == SubscriptionStatus.TRIALING
    assert (first.trial_end - first.current_period_start).days == 7

    second = start_trial(viewer_client, memory_provider, "second", "4242 4242 4242 4242")
    # No second trial: the trial ends as it starts, and the renewal job charges the card now.
    assert second.status == SubscriptionStatus.TRIALING
    assert (second.trial_end - second.current_period_start).total_seconds() == 1
    clock.advance(timedelta(seconds=1))
    assert renewal_run(subscription_id=second.pk) == RenewalOutcome.RENEWED
    second.refresh_from_db()
    assert second.status == SubscriptionStatus.ACTIVE
    payment = Payment.objects.get(subscription=second)
    assert (payment.amount, payment.status) == (399000, PaymentStatus.SUCCEEDED)
    # The first viewer's trial is untouched and charges nothing yet.
    assert renewal_run(subscription_id=first.pk) == RenewalOutcome.NOT_DUE
    assert clock.now() < Subscription.objects.get(pk=first.pk).trial_end


def test_another_card_gets_its_own_trial(viewer_client, memory_provider, with_trial):
    start_trial(viewer_client, memory_provider, "first", "4242 4242 4242 4242")
    other = start_trial(viewer_client, memory_provider, "second", "4000 0000 0000 0341")
    assert other.status == SubscriptionStatus.TRIALING
    assert (other.trial_end - other.current_period_start).days == 7
