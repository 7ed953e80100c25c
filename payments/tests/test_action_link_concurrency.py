"""Following one action link many times at once opens one provider page (real PostgreSQL, real threads)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, TestCase

from core import clock
from payments.models import CheckoutSession, CheckoutStatus, Payment, PaymentKind
from payments.services.action_links import action_link_url
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)
FOLLOWERS = 10


def test_simultaneous_follows_after_the_page_expired_open_one_fresh_page(paid_subscription, stripe_sandbox):
    assert connection.vendor == "postgresql"
    subscription = paid_subscription(card="4000002760003184")
    clock.advance(subscription.current_period_end - clock.now())
    with TestCase.captureOnCommitCallbacks(execute=True):  # a no-op here: commits are real
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.AUTHENTICATION_REQUIRED
    payment = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
    (first_page,) = CheckoutSession.objects.filter(payment=payment)
    assert first_page.provider_session_id  # opened right after the decline committed
    pages_at_provider = len(stripe_sandbox.objects("checkout.session"))
    clock.advance(settings.CHECKOUT_SESSION_TTL + timedelta(minutes=1))
    path = action_link_url(payment_id=payment.pk).removeprefix(settings.PUBLIC_BASE_URL)

    responses = run_concurrently(lambda _: Client().get(path), FOLLOWERS)

    assert {r.status_code for r in responses} == {302}
    assert len({r["Location"] for r in responses}) == 1
    old, fresh = CheckoutSession.objects.filter(payment=payment).order_by("created_at")
    assert (old.pk, old.status) == (first_page.pk, CheckoutStatus.EXPIRED)
    assert (fresh.status, fresh.url) == (CheckoutStatus.OPEN, responses[0]["Location"])
    assert len(stripe_sandbox.objects("checkout.session")) == pages_at_provider + 1


def test_simultaneous_first_follows_open_one_page(paid_subscription, stripe_sandbox):
    subscription = paid_subscription(card="4000002760003184")
    clock.advance(subscription.current_period_end - clock.now())
    # The page the renewal opens after its commit is lost (a provider outage): the link opens it.
    stripe_sandbox.post("/faults", {"mode": "error", "path": "/v1/checkout/sessions", "status": 500})
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.AUTHENTICATION_REQUIRED
    stripe_sandbox.delete("/faults")
    payment = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
    assert not CheckoutSession.objects.get(payment=payment).provider_session_id
    pages_at_provider = len(stripe_sandbox.objects("checkout.session"))
    path = action_link_url(payment_id=payment.pk).removeprefix(settings.PUBLIC_BASE_URL)

    responses = run_concurrently(lambda _: Client().get(path), FOLLOWERS)

    assert {r.status_code for r in responses} == {302}
    assert len({r["Location"] for r in responses}) == 1
    (page,) = CheckoutSession.objects.filter(payment=payment)
    assert page.url == responses[0]["Location"]
    assert len(stripe_sandbox.objects("checkout.session")) == pages_at_provider + 1
