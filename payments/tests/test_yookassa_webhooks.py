"""POST /api/v1/webhooks/yookassa/: only from YooKassa's addresses, stored once, believed never.

YooKassa signs nothing, so anyone who can reach the endpoint can post a notification: it is
accepted only from YooKassa's published ranges, and what it claims is read again from
YooKassa's API by id, so a forged one grants nothing.
"""

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.models import Subscription, SubscriptionStatus
from config.celery import app as celery_app
from payments.models import CheckoutSession, WebhookEvent, WebhookEventStatus
from payments.services.checkout import settle as checkout_services
from payments.services.webhooks import EventProcessingFailed, webhook_event_process
from payments.tests.concurrency import run_concurrently
from payments.tests.yookassa_helpers import YooKassaProcess
from payments.tests.yookassa_wiring import (
    SUCCEEDS,
    VIEWER_EMAIL,
    configure_yookassa,
    subscribe,
    yookassa_tariff,
)

URL = "/api/v1/webhooks/yookassa/"
YOOKASSA_ADDRESS = "185.71.76.10"  # inside 185.71.76.0/27, one of YooKassa's published ranges


def notification(payment_id: str, *, event: str = "payment.succeeded", status: str = "succeeded") -> bytes:
    """Return a notification as YooKassa words one (or as a forger would)."""
    return json.dumps(
        {
            "type": "notification",
            "event": event,
            "object": {
                "id": payment_id,
                "status": status,
                "paid": True,
                "amount": {"value": "399.00", "currency": "RUB"},
                "created_at": "2026-12-01T10:00:00.000Z",
                "recipient": {"account_id": "100500", "gateway_id": "100500"},
                "refundable": True,
                "test": True,
                "metadata": {},
            },
        }
    ).encode()


def post(body: bytes, *, remote_addr: str = YOOKASSA_ADDRESS, **headers: Any) -> Any:
    return APIClient().post(
        URL, data=body, content_type="application/json", REMOTE_ADDR=remote_addr, **headers
    )


@pytest.mark.django_db
class TestWhoMayPost:
    @pytest.fixture(autouse=True)
    def _configured(self, settings):
        configure_yookassa(settings)
        settings.TRUSTED_PROXY_IPS = ["10.0.0.0/8"]

    @pytest.mark.parametrize("address", ["185.71.76.10", "77.75.153.100", "77.75.156.11", "2a02:5180::1"])
    def test_yookassas_published_addresses_are_heard(self, address):
        response = post(notification("2f0a1b2c-000f-5000-8000-1a2b3c4d5e6f"), remote_addr=address)

        assert response.status_code == 200
        assert response.json() == {"received": True, "duplicate": False}
        assert WebhookEvent.objects.get().provider == "yookassa"

    def test_anyone_else_is_refused_and_nothing_is_stored(self):
        response = post(notification("2f0a1b2c-000f-5000-8000-1a2b3c4d5e6f"), remote_addr="203.0.113.7")

        assert response.status_code == 403
        assert response.json()["error"]["code"] == "sender_not_allowed"
        assert not WebhookEvent.objects.exists()

    def test_behind_our_proxy_the_address_it_saw_counts(self):
        body = notification("2f0a1b2c-000f-5000-8000-1a2b3c4d5e6f")

        through_proxy = post(
            body, remote_addr="10.0.0.5", HTTP_X_FORWARDED_FOR=f"198.51.100.1, {YOOKASSA_ADDRESS}"
        )
        claimed = post(body, remote_addr="10.0.0.5", HTTP_X_FORWARDED_FOR=f"{YOOKASSA_ADDRESS}, 203.0.113.7")

        assert through_proxy.status_code == 200
        assert claimed.status_code == 403  # the proxy saw 203.0.113.7; the first entry is the client's word

    def test_a_forwarded_header_from_anyone_but_our_proxy_is_not_believed(self):
        response = post(
            notification("2f0a1b2c-000f-5000-8000-1a2b3c4d5e6f"),
            remote_addr="203.0.113.7",
            HTTP_X_FORWARDED_FOR=YOOKASSA_ADDRESS,
        )

        assert response.status_code == 403

    def test_loopback_is_heard_only_outside_production(self, settings):
        body = notification("2f0a1b2c-000f-5000-8000-1a2b3c4d5e6f")
        assert post(body, remote_addr="127.0.0.1").status_code == 200

        settings.BILLING_PRODUCTION = True

        assert post(body, remote_addr="127.0.0.1").status_code == 403

    def test_the_addresses_are_a_setting(self, settings):
        settings.YOOKASSA_NOTIFICATION_IPS = ["192.0.2.0/24"]

        assert post(notification("a"), remote_addr=YOOKASSA_ADDRESS).status_code == 403
        assert post(notification("a"), remote_addr="192.0.2.9").status_code == 200

    def test_a_body_that_is_no_notification_is_a_400(self):
        response = post(b'{"type": "something"}')

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_payload"

    def test_without_yookassa_configured_the_route_is_a_404(self, settings):
        settings.PAYMENT_PROVIDERS = {"stripe": "payments.gateways.stripe_setup.gateway_from_settings"}

        assert post(notification("a")).status_code == 404


@pytest.mark.django_db
class TestForgedNotifications:
    def test_a_made_up_payment_id_grants_nothing_and_fails_visibly(self, yookassa):
        post(notification("2f0a1b2c-000f-5000-8000-1a2b3c4d5e6f"))
        event = WebhookEvent.objects.get()

        with pytest.raises(EventProcessingFailed) as failure:
            webhook_event_process(event_pk=event.pk)

        event.refresh_from_db()
        assert failure.value.retryable is False
        assert event.status == WebhookEventStatus.FAILED
        assert event.last_error.startswith("PermanentGatewayError: Payment doesn't exist")
        assert not Subscription.objects.exists()

    def test_a_real_pending_payment_claimed_paid_grants_nothing(self, viewer_client, yookassa):
        client = viewer_client("alice", VIEWER_EMAIL)
        body = subscribe(client, yookassa_tariff())
        checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])

        post(notification(checkout.provider_session_id or ""))
        event = webhook_event_process(event_pk=WebhookEvent.objects.get().pk)

        assert event is not None and event.status == WebhookEventStatus.IGNORED
        assert Subscription.objects.get().status == SubscriptionStatus.PENDING
        assert client.get("/api/v1/access/").json()["has_access"] is False


@pytest.fixture
def eager_tasks():
    """Run Celery tasks inline, so each delivery's own thread also processes the event."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.mark.django_db(transaction=True)
def test_one_notification_delivered_twenty_times_at_once_starts_the_subscription_once(
    yookassa: YooKassaProcess, viewer_client, eager_tasks, monkeypatch: pytest.MonkeyPatch
):
    starts: list[str] = []
    original = checkout_services.subscription_start

    def counting(**kwargs: Any) -> Any:
        starts.append(str(kwargs["subscription"].pk))
        return original(**kwargs)

    monkeypatch.setattr(checkout_services, "subscription_start", counting)
    body = subscribe(viewer_client("alice", VIEWER_EMAIL), yookassa_tariff())
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    yookassa.pay(checkout.provider_session_id or "", SUCCEEDS)
    delivered = notification(checkout.provider_session_id or "")

    statuses = run_concurrently(lambda _: post(delivered).status_code, 20)

    assert statuses == [200] * 20
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts) == (WebhookEventStatus.PROCESSED, 1)
    assert starts == [str(checkout.subscription_id)]
    assert Subscription.objects.get().status == SubscriptionStatus.ACTIVE
