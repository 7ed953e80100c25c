"""Correctly signed yet hostile Stripe events are refused with a 400 and nothing stored; a
broker outage never turns a stored event into a 500, at the endpoint or in admin's replay."""

import json
import logging
import socket
import time
from collections.abc import Iterator

import pytest

from accounts.tests.roles import roles_restore, staff_member
from config.celery import app as celery_app
from payments.models import WebhookEvent, WebhookEventStatus
from payments.tests.stripe_signing import event_body, sign

URL = "/api/v1/webhooks/stripe/"
SECRET = "whsec_billing_tests"


def post_signed(client, body: bytes):
    return client.post(
        URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body, SECRET)
    )


def raw_event(**fields) -> bytes:
    event = {
        "id": "evt_hostile",
        "type": "charge.refunded",
        "created": int(time.time()),
        "data": {"object": {}},
    }
    return json.dumps({**event, **fields}).encode()


HOSTILE_BODIES = {
    "event id longer than its column": event_body("evt_" + "x" * 300, "charge.refunded", {"id": "ch_1"}),
    "type longer than its column": event_body("evt_1", "t" * 200, {"id": "ch_1"}),
    "object id longer than its column": event_body("evt_1", "charge.refunded", {"id": "ch_" + "x" * 300}),
    "NUL in the event id": event_body("evt_\x001", "charge.refunded", {"id": "ch_1"}),
    "NUL in the type": event_body("evt_1", "charge.\x00refunded", {"id": "ch_1"}),
    "NUL deep in the payload": event_body(
        "evt_1", "charge.refunded", {"id": "ch_1", "metadata": {"a": "\x00"}}
    ),
    "unpaired surrogate in the payload": event_body(
        "evt_1", "charge.refunded", {"id": "ch_1", "x": "\ud800"}
    ),
    "created 1e30": raw_event(created=1e30),
    "created NaN": raw_event(created=float("nan")),
    "created not a number": raw_event(created="yesterday"),
    "payload nested 100,000 deep": b'{"id": "evt_1", "type": "a", "created": 1, "data": {"object": {"a": '
    + b"[" * 100_000
    + b"}}}",
    "payload nested 900 deep": raw_event(data={"object": {"a": json.loads("[" * 900 + "]" * 900)}}),
    # Parses to infinity, which jsonb cannot hold (found by config/tests/test_api_fuzz.py).
    "a number too large for a float in the payload": b'{"id": "evt_1", "type": "charge.refunded", '
    + b'"created": 1, "data": {"object": {"id": "ch_1", "amount": -1e999}}}',
}


@pytest.mark.django_db
@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_signed_event_no_row_can_hold_is_400_and_nothing_is_stored(api_client, body):
    response = post_signed(api_client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_event_at_the_column_limits_is_stored(api_client):
    body = event_body("e" * 255, "t" * 128, {"id": "o" * 255})
    assert post_signed(api_client, body).status_code == 200
    assert WebhookEvent.objects.get().event_id == "e" * 255


# --- the broker is down ------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _drop_broker_connections() -> None:
    # Celery keeps a pool of connections to the broker it was configured with (and offers
    # no public way to drop it but forking).
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


@pytest.fixture
def broker_down(monkeypatch) -> Iterator[None]:
    """Point this process's Celery app at a port nobody listens on; restore it afterwards."""
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{closed_port()}/0")
    _drop_broker_connections()
    yield
    monkeypatch.undo()
    _drop_broker_connections()


# Committed for real (transaction=True): on_commit callbacks run as in production, in the request.
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("broker_down")
def test_event_stored_with_the_broker_down_is_acknowledged_and_left_for_reconciliation(api_client, caplog):
    body = event_body("evt_broker_down", "checkout.session.completed", {"id": "cs_1"})
    with caplog.at_level(logging.WARNING):
        response = post_signed(api_client, body)
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    stored = WebhookEvent.objects.get()
    assert (stored.event_id, stored.status, stored.attempts) == (
        "evt_broker_down",
        WebhookEventStatus.RECEIVED,
        0,
    )
    assert "could not queue payments.tasks.process_webhook_event now" in caplog.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("broker_down")
def test_admin_replay_with_the_broker_down_marks_the_event_and_tells_staff(client):
    event = WebhookEvent.objects.create(
        event_id="evt_failed_1",
        type="checkout.session.completed",
        object_id="cs_1",
        provider_created_at="2026-01-01T00:00:00Z",
        payload={"id": "cs_1"},
        status=WebhookEventStatus.FAILED,
        attempts=2,
    )
    roles_restore()  # an earlier transactional test may have flushed the role groups
    client.force_login(staff_member("Support"))
    response = client.post(
        "/admin/payments/webhookevent/",
        {"action": "reprocess", "_selected_action": [event.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "the next reconciliation run" in response.content.decode()
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.RECEIVED


@pytest.mark.django_db
@pytest.mark.usefixtures("broker_down")
def test_reads_keep_working_with_the_broker_down(viewer_client, api_client):
    assert viewer_client("alice").get("/api/v1/access/").status_code == 200
    assert api_client.get("/api/v1/tariffs/").status_code == 200
