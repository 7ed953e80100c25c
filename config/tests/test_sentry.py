"""Sentry gets the error, never the secrets: what the SDK would send is captured here and searched.

The SDK is started as the settings start it (config.sentry.sentry_init) with a DSN, but with a
transport that keeps each envelope in memory instead of sending it: nothing goes to the network.
"""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
import sentry_sdk
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django_celery_beat.schedulers import DatabaseScheduler
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sentry_sdk.types import Event

from config.celery import app
from config.sentry import sentry_init, unmonitored_beat_jobs

DSN = "https://0123456789abcdef0123456789abcdef@sentry.invalid/42"
SECRET_KEY = "sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUv"
WEBHOOK_SECRET = "whsec_5f8a3c2b1d9e7f6a0b4c"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLWFsaWNl"
SERVICE_KEY = "cinema-service-key-0f1e2d3c4b5a"
EMAIL = "ivan.petrov@example.com"
CARD = "4242 4242 4242 4242"
PASSWORD = "correct-horse-battery-staple"
SECRETS = [SECRET_KEY, WEBHOOK_SECRET, BEARER, SERVICE_KEY, EMAIL, CARD, CARD.replace(" ", ""), PASSWORD]

logger = logging.getLogger("payments.charges")


class CapturingTransport(Transport):
    """Keep every envelope the SDK would send."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def serialized(self) -> str:
        """Return everything captured as the bytes the SDK would have sent."""
        return b"".join(envelope.serialize() for envelope in self.envelopes).decode()

    def events(self) -> list[Event]:
        return [event for envelope in self.envelopes if (event := envelope.get_event()) is not None]

    def check_ins(self) -> list[dict]:
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == "check_in" and item.payload.json is not None
        ]


class CardChargeExploded(Exception):
    """What the view below raises."""


@csrf_exempt
def charge_view(request: HttpRequest) -> HttpResponse:
    # Locals a stack frame would show, the card and key among them.
    card_number = CARD
    stripe_key = SECRET_KEY
    amount, subscription_ref = 199900, "sub-42"
    sentry_sdk.set_extra("customer", {"email": EMAIL, "note": f"pays with {card_number}"})
    sentry_sdk.set_context("provider", {"api_key": stripe_key, "webhook": WEBHOOK_SECRET})
    logger.info("charging %s for %s with %s", card_number, EMAIL, amount)  # a breadcrumb
    raise CardChargeExploded(f"{stripe_key} refused card {card_number} of {EMAIL} ({subscription_ref})")


urlpatterns = [path("charge/", charge_view)]


@pytest.fixture
def sentry_capture() -> Iterator[CapturingTransport]:
    """Start the SDK as the settings would with SENTRY_DSN set; return what it captured."""
    transport = CapturingTransport()
    sentry_init(
        dsn=DSN,
        environment="staging",
        release="billing@2026.11.3",
        traces_sample_rate=0.0,
        beat_schedule=settings.CELERY_BEAT_SCHEDULE,
        transport=transport,
    )
    assert not sentry_sdk.get_client().should_send_default_pii()
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def wsgi_post(path: str, query: str, body: dict, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """POST through Django's WSGI handler, as gunicorn would, so Sentry sees the request as in production.

    Return the status line and the response headers.
    """
    data = json.dumps(body).encode()
    environ: dict = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "HTTP_HOST": "localhost",
        "wsgi.input": io.BytesIO(data),
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }
    setup_testing_defaults(environ)
    answer: dict = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer.update(status=status, headers=dict(response_headers))

    # As Django's test client does: the test's database connection must survive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = WSGIHandler()(environ, start_response)
        b"".join(chunks)
        chunks.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"]


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_an_error_reaches_sentry_with_no_secret_token_email_or_card(sentry_capture):
    status, headers = wsgi_post(
        "/charge/",
        f"token={BEARER}&email={EMAIL}&plan=monthly",
        {"card": CARD, "password": PASSWORD, "email": EMAIL, "plan": "monthly"},
        {
            "Authorization": f"Bearer {BEARER}",
            "X-Service-Key": SERVICE_KEY,
            "Stripe-Signature": f"t=1,v1={WEBHOOK_SECRET}",
            "Cookie": f"sessionid={SERVICE_KEY}",
            "X-Forwarded-For": EMAIL,
            "User-Agent": "cinema-web/1.0",
        },
    )
    assert status.startswith("500")

    sent = sentry_capture.serialized()
    for secret in SECRETS:
        assert secret not in sent, sent[max(0, sent.find(secret) - 300) : sent.find(secret) + 100]

    (event,) = sentry_capture.events()
    # The error itself is all there to act on.
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "CardChargeExploded"
    assert exception["value"] == "[Filtered] refused card [Filtered] of [Filtered] (sub-42)"
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["function"] == "charge_view"
    assert frame["vars"]["card_number"] == "[Filtered]"
    assert frame["vars"]["amount"] == "199900"
    assert frame["vars"]["subscription_ref"] == "'sub-42'"
    request = event["request"]
    assert (request["method"], request["url"]) == ("POST", "http://localhost/charge/")
    assert request["headers"]["Authorization"] == "[Filtered]"
    assert request["headers"]["User-Agent"] == "cinema-web/1.0"
    assert request["data"]["plan"] == "monthly"
    assert "plan=monthly" in request["query_string"]
    assert event["extra"]["customer"] == {"email": "[Filtered]", "note": "pays with [Filtered]"}
    assert event["contexts"]["provider"] == {"api_key": "[Filtered]", "webhook": "[Filtered]"}
    assert (event["environment"], event["release"]) == ("staging", "billing@2026.11.3")
    # It names the request its log lines carry.
    assert event["tags"]["request_id"] == headers["X-Request-ID"]
    (crumb,) = [
        crumb for crumb in event["breadcrumbs"]["values"] if crumb.get("category") == "payments.charges"
    ]
    assert crumb["message"] == "charging [Filtered] for [Filtered] with 199900"


@pytest.mark.django_db
def test_captured_exception_outside_a_request_is_scrubbed_too(sentry_capture):
    def charge(card_number: str, email: str) -> None:
        token = BEARER
        raise ValueError(f"Bearer {token} could not charge {card_number} for {email}")

    with sentry_sdk.new_scope() as scope:
        scope.set_extra("password", PASSWORD)
        scope.set_extra("headers", {"Authorization": f"Bearer {BEARER}", "Cookie": "csrftoken=abc"})
        try:
            charge(CARD, EMAIL)
        except ValueError as error:
            sentry_sdk.capture_exception(error)

    sent = sentry_capture.serialized()
    for secret in SECRETS:
        assert secret not in sent, secret
    (event,) = sentry_capture.events()
    assert event["exception"]["values"][0]["type"] == "ValueError"


@pytest.mark.django_db
def test_beat_jobs_of_the_database_scheduler_check_in_as_cron_monitors(sentry_capture, monkeypatch):
    # Beat closes stale connections between ticks; the test's one sits in its transaction.
    monkeypatch.setattr("django_celery_beat.schedulers.close_old_connections", lambda: None)
    scheduler = DatabaseScheduler(app=app)
    sent: dict[str, dict] = {}
    monkeypatch.setattr(
        scheduler,
        "apply_async",
        lambda entry, **kwargs: sent.setdefault(entry.name, entry.options.get("headers")),
    )

    for name in ("enqueue-due-renewals", "check-ledger", "dispatch-events"):
        scheduler.apply_entry(scheduler.schedule[name])

    renewals, ledger = sent["enqueue-due-renewals"], sent["check-ledger"]
    assert renewals["sentry-monitor-slug"] == "enqueue-due-renewals"
    assert renewals["sentry-monitor-config"]["schedule"] == {"type": "interval", "value": 1, "unit": "minute"}
    assert ledger["sentry-monitor-config"]["schedule"] == {"type": "crontab", "value": "0 2 * * *"}
    # Headers django-celery-beat sets itself survive.
    assert renewals["periodic_task_name"] == "enqueue-due-renewals"
    # Every 5 seconds is below what Sentry Crons can watch: the job runs unmonitored.
    assert "sentry-monitor-slug" not in sent["dispatch-events"]
    assert {(c["monitor_slug"], c["status"]) for c in sentry_capture.check_ins()} == {
        ("enqueue-due-renewals", "in_progress"),
        ("check-ledger", "in_progress"),
    }


def test_jobs_under_a_minute_or_of_part_minutes_are_not_monitored():
    schedule = {
        "every-5s": {"schedule": 5.0},
        "every-90s": {"schedule": 90},
        "every-minute": {"schedule": 60.0},
        "nightly": {"schedule": object()},
    }
    assert unmonitored_beat_jobs(schedule) == [r"^every\-5s$", r"^every\-90s$", r"^celery\.backend_cleanup$"]
