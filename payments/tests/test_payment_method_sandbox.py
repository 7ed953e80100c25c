"""Replacing the card through the Stripe sandbox: the setup-mode page, its webhooks, and the race of
the webhook with the return page (real threads on PostgreSQL)."""

import json
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection

from billing.models import SubscriptionStatus
from core import clock
from payments.models import (
    CheckoutMode,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    ProviderCustomer,
    WebhookEvent,
    WebhookEventStatus,
)
from payments.services.checkout import checkout_sync
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.services.webhooks import webhook_event_process
from payments.tests.concurrency import run_concurrently
from payments.tests.stripe_signing import sign

URL = "/api/v1/payment-method/"
UPDATE_URL = "/api/v1/payment-method/update/"
WEBHOOK_URL = "/api/v1/webhooks/stripe/"
SECRET = "whsec_billing_tests"
MASTERCARD = "5555555555554444"


def open_update_page(client) -> CheckoutSession:
    answer = client.post(UPDATE_URL)
    assert answer.status_code == 200, answer.json()
    return CheckoutSession.objects.get(mode=CheckoutMode.CARD_UPDATE, url=answer.json()["checkout_url"])


def store_sandbox_events(api_client, sandbox, *, since: int) -> list[WebhookEvent]:
    """Deliver the sandbox's events from the `since`-th on to our endpoint, signed; return them stored."""
    events = sorted(sandbox.get("/objects", type="event")["data"], key=lambda e: e["created"])[since:]
    for event in events:
        body = json.dumps(event).encode()
        answer = api_client.post(
            WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body, SECRET)
        )
        assert answer.status_code == 200
    return list(WebhookEvent.objects.filter(event_id__in=[e["id"] for e in events]))


def event_count(sandbox) -> int:
    return len(sandbox.get("/objects", type="event")["data"])


@pytest.mark.django_db
def test_the_sandbox_page_is_a_setup_page_of_the_saved_customer(
    paid_subscription, stripe_sandbox, viewer_client
):
    paid_subscription()
    checkout = open_update_page(viewer_client("alice"))
    created = stripe_sandbox.requests(method="POST", path="/v1/checkout/sessions")[-1]
    assert created["idempotency_key"] == f"checkout:{checkout.pk}"
    session = next(
        s for s in stripe_sandbox.objects("checkout.session") if s["id"] == checkout.provider_session_id
    )
    assert (session["mode"], session["amount_total"]) == ("setup", None)
    assert session["customer"] == ProviderCustomer.objects.get(account__user_id="alice").customer_ref
    assert session["metadata"]["checkout_id"] == str(checkout.pk)


@pytest.mark.django_db
def test_webhooks_alone_save_the_new_card(paid_subscription, stripe_sandbox, viewer_client, api_client):
    subscription = paid_subscription()
    client = viewer_client("alice")
    checkout = open_update_page(client)
    since = event_count(stripe_sandbox)
    stripe_sandbox.pay(checkout.provider_session_id, MASTERCARD)
    events = store_sandbox_events(api_client, stripe_sandbox, since=since)
    assert {e.type for e in events} >= {"checkout.session.completed", "setup_intent.succeeded"}
    for event in events:
        webhook_event_process(event_pk=event.pk)
    assert {e.status for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])} <= {
        WebhookEventStatus.PROCESSED,
        WebhookEventStatus.IGNORED,
    }
    checkout.refresh_from_db()
    assert checkout.status == CheckoutStatus.COMPLETE
    body = client.get(URL).json()
    assert (body["provider"], body["brand"], body["last4"]) == ("stripe", "mastercard", "4444")
    assert isinstance(body["exp_month"], int) and isinstance(body["exp_year"], int)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert Payment.objects.filter(subscription=subscription).count() == 1
    assert stripe_sandbox.requests(method="POST", path="/v1/payment_intents") == []


@pytest.mark.django_db(transaction=True)
def test_the_webhook_and_the_return_page_racing_save_one_card(
    paid_subscription, stripe_sandbox, viewer_client, api_client
):
    assert connection.vendor == "postgresql"
    paid_subscription()
    client = viewer_client("alice")
    checkout = open_update_page(client)
    since = event_count(stripe_sandbox)
    stripe_sandbox.pay(checkout.provider_session_id, MASTERCARD)
    events = store_sandbox_events(api_client, stripe_sandbox, since=since)
    assert len(events) >= 2

    # Every stored event's worker and the return page's re-reads settle the page at once.
    racers = [partial(webhook_event_process, event_pk=e.pk) for e in events]
    racers += [
        partial(checkout_sync, provider_session_id=checkout.provider_session_id, provider="stripe")
    ] * 3
    run_concurrently(lambda i: racers[i](), len(racers))

    assert {e.status for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])} <= {
        WebhookEventStatus.PROCESSED,
        WebhookEventStatus.IGNORED,
    }

    checkout.refresh_from_db()
    assert checkout.status == CheckoutStatus.COMPLETE
    saved = ProviderCustomer.objects.filter(account__user_id="alice")
    assert saved.count() == 1
    assert (saved.get().card_brand, saved.get().card_last4) == ("mastercard", "4444")
    assert client.get(URL).json()["last4"] == "4444"
    assert stripe_sandbox.requests(method="POST", path="/v1/payment_intents") == []


@pytest.mark.django_db
def test_a_provider_outage_is_a_503_and_the_retry_opens_the_same_single_page(
    paid_subscription, stripe_sandbox, viewer_client
):
    paid_subscription()
    sessions_before = len(stripe_sandbox.objects("checkout.session"))
    fault = {
        "mode": "error",
        "status": 500,
        "when": "after",
        "path": "/v1/checkout/sessions",
        "method": "POST",
    }
    stripe_sandbox.post("/faults", {**fault, "count": 1})
    client = viewer_client("alice")
    failed = client.post(UPDATE_URL)
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "payment_provider_unavailable"
    checkout = open_update_page(client)
    assert len(stripe_sandbox.objects("checkout.session")) == sessions_before + 1
    key = f"checkout:{checkout.pk}"
    attempts = [
        r
        for r in stripe_sandbox.requests(method="POST", path="/v1/checkout/sessions")
        if r["idempotency_key"] == key
    ]
    assert len(attempts) == 2


@pytest.mark.django_db(transaction=True)
def test_the_card_update_racing_a_dunning_retry_ends_renewed_with_the_new_card(
    paid_subscription, stripe_sandbox, viewer_client, monkeypatch
):
    monkeypatch.setattr("core.queueing.enqueue_quietly", lambda task, *args, fallback: True)
    subscription = paid_subscription(card="4000000000000341")  # pays once, declines every later charge
    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
    subscription.refresh_from_db()
    clock.advance(subscription.next_renewal_attempt_at - clock.now())  # the dunning retry is due too
    client = viewer_client("alice")
    checkout = open_update_page(client)
    stripe_sandbox.pay(checkout.provider_session_id, MASTERCARD)

    racers = [
        partial(renewal_run, subscription_id=subscription.pk),
        partial(checkout_sync, provider_session_id=checkout.provider_session_id, provider="stripe"),
    ]
    run_concurrently(lambda i: racers[i](), len(racers))  # any deadlock or error raises here
    # The retry the card update queued (or the next beat) runs; whichever order the race took,
    # the renewal ends paid once, by the new card.
    renewal_run(subscription_id=subscription.pk)

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    renewal = Payment.objects.get(subscription=subscription, kind="renewal")
    assert (renewal.status, renewal.card_brand, renewal.card_last4) == ("succeeded", "mastercard", "4444")
    succeeded = [i for i in stripe_sandbox.objects("payment_intent") if i["status"] == "succeeded"]
    assert len(succeeded) == 2  # the first payment and this renewal
