"""One event delivered many times at once, or racing the success page, settles once."""

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.tokens import issue_token
from config.celery import app as celery_app
from payments.models import CheckoutSession, WebhookEvent, WebhookEventStatus
from payments.services.checkout import settle as checkout_services
from payments.services.webhooks import webhook_event_process
from payments.tests.concurrency import run_concurrently
from payments.tests.stripe_signing import sign
from tariffs.models import Tariff

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "whsec_billing_tests"


@pytest.fixture
def eager_tasks():
    """Run Celery tasks inline, so each delivery's own thread also processes the event."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count how many times a subscription is started."""
    calls: list[str] = []
    original = checkout_services.subscription_start

    def counting(**kwargs: Any) -> Any:
        calls.append(str(kwargs["subscription"].pk))
        return original(**kwargs)

    monkeypatch.setattr(checkout_services, "subscription_start", counting)
    return calls


@pytest.fixture
def paid_checkout(stripe_sandbox):
    Tariff.objects.create(slug="monthly", name="Monthly", amount=39900, currency="RUB")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id='alice')}")
    body = client.post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json").json()
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    stripe_sandbox.pay(checkout.provider_session_id, "4242424242424242")
    return checkout


def completed_event(sandbox, checkout) -> bytes:
    events = sandbox.get("/objects", type="event")["data"]
    event = next(e for e in events if e["type"] == "checkout.session.completed")
    assert event["data"]["object"]["id"] == checkout.provider_session_id
    return json.dumps(event).encode()


def test_one_event_delivered_twenty_times_at_once_changes_state_once(
    stripe_sandbox, paid_checkout, eager_tasks, starts
):
    body = completed_event(stripe_sandbox, paid_checkout)

    def deliver(_: int) -> int:
        response = APIClient().post(
            "/api/v1/webhooks/stripe/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(body, SECRET),
        )
        return response.status_code

    assert run_concurrently(deliver, 20) == [200] * 20
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts) == (WebhookEventStatus.PROCESSED, 1)
    assert starts == [str(paid_checkout.subscription_id)]
    paid_checkout.subscription.refresh_from_db()
    assert paid_checkout.subscription.status == "active"


def test_webhook_racing_the_success_page_activates_once(stripe_sandbox, paid_checkout, starts):
    body = completed_event(stripe_sandbox, paid_checkout)
    response = APIClient().post(
        "/api/v1/webhooks/stripe/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, SECRET),
    )
    assert response.status_code == 200
    event_pk = WebhookEvent.objects.get().pk

    def race(index: int) -> None:
        if index % 2:
            webhook_event_process(event_pk=event_pk)
        else:
            # What the success page does on every poll, without its throttle.
            checkout_services.checkout_sync(provider_session_id=paid_checkout.provider_session_id)

    run_concurrently(race, 10)
    assert starts == [str(paid_checkout.subscription_id)]
    paid_checkout.refresh_from_db()
    assert paid_checkout.status == "complete"
    assert paid_checkout.payment.status == "succeeded"
