"""Log lines: JSON in production, one request id per request carried into the tasks it queues, no secrets.

The views below stand in for any view of the service (the test's own URLs); the task they
queue travels through Celery's real publishing and message handling, over an in-memory broker,
and runs in a context of its own as it would in a worker process.
"""

import contextvars
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from celery import shared_task
from celery.worker.request import Request
from django.http import HttpRequest, HttpResponse
from django.urls import path
from kombu import Connection, Producer

from config.celery import app
from config.logging import JsonFormatter, LogContextFilter, PlainFormatter
from core.log_context import log_context, log_context_fields
from core.scrubbing import FILTERED

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger("config.tests.probe")
# Where the probe view and task queue their tasks: a producer on the `memory_broker` fixture's broker.
_broker: dict[str, Producer] = {}

SECRET_KEY = "sk_live_51HxYzAbCdEfGhIjKlMnOp"
CARD = "4242 4242 4242 4242"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
EMAIL = "ivan.petrov@example.com"


@shared_task(name="config.tests.log_probe")
def log_probe(payment_id: str) -> None:
    logger.info("task for payment %s", payment_id)


def probe_view(request: HttpRequest) -> HttpResponse:
    logger.info("serving the probe")
    log_probe.apply_async(("pay-1",), producer=_broker["producer"])
    logger.info("queued the probe task")
    return HttpResponse("ok")


def bad_request_view(request: HttpRequest) -> HttpResponse:
    # Django logs "Bad Request" itself, after the middleware has returned.
    return HttpResponse("no", status=400)


urlpatterns = [path("probe/", probe_view), path("probe/bad/", bad_request_view)]


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict]]]:
    """Capture the root logger's records as production writes them; return a reader of the JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def memory_broker() -> Iterator[Connection]:
    """Return a connection to an in-memory broker whose queue starts (and ends) empty."""
    with Connection("memory://localhost/") as connection:
        connection.SimpleQueue("celery").clear()
        _broker["producer"] = connection.Producer()
        yield connection
        connection.SimpleQueue("celery").clear()
    _broker.clear()


def run_as_a_worker(connection: Connection) -> None:
    """Take the next message off the queue and run it as a worker process would, in a fresh context."""
    message = connection.SimpleQueue("celery").get(timeout=1)
    request = Request(message, app=app, task=app.tasks[message.headers["task"]])
    contextvars.Context().run(request.execute)
    message.ack()


def lines_of(lines: list[dict], logger_name: str) -> list[dict]:
    return [line for line in lines if line["logger"] == logger_name]


@pytest.mark.urls(__name__)
class TestRequestId:
    def test_every_line_of_a_request_carries_the_id_its_response_gives(
        self, client, log_lines, memory_broker
    ):
        response = client.get("/probe/")

        request_id = response["X-Request-ID"]
        assert len(request_id) == 32
        probe_lines = lines_of(log_lines(), "config.tests.probe")
        assert [line["message"] for line in probe_lines] == ["serving the probe", "queued the probe task"]
        assert {line["request_id"] for line in probe_lines} == {request_id}

    def test_djangos_own_line_after_the_view_carries_the_id(self, client, log_lines):
        response = client.get("/probe/bad/")

        (bad_request,) = lines_of(log_lines(), "django.request")
        assert bad_request["message"] == "Bad Request: /probe/bad/"
        assert bad_request["request_id"] == response["X-Request-ID"]
        # Nothing logged after the request claims it.
        logger.info("between requests")
        assert "request_id" not in log_lines()[-1]

    def test_a_safe_id_from_the_caller_is_kept(self, client, memory_broker):
        response = client.get("/probe/", headers={"X-Request-ID": "gw-7f3a.01_B"})
        assert response["X-Request-ID"] == "gw-7f3a.01_B"

    @pytest.mark.parametrize("unsafe", ["id with spaces", "x" * 65, "<script>", "a\tb", ""])
    def test_an_unsafe_or_empty_id_from_the_caller_is_replaced(self, client, memory_broker, unsafe):
        response = client.get("/probe/", headers={"X-Request-ID": unsafe})
        assert response["X-Request-ID"] != unsafe
        assert len(response["X-Request-ID"]) == 32

    def test_a_task_queued_by_a_request_logs_with_the_requests_id(self, client, log_lines, memory_broker):
        response = client.get("/probe/")
        run_as_a_worker(memory_broker)

        task_lines = [line for line in log_lines() if line["message"] == "task for payment pay-1"]
        assert [line["request_id"] for line in task_lines] == [response["X-Request-ID"]]
        # Celery's own line about the task, written by the worker, carries it too.
        (succeeded,) = lines_of(log_lines(), "celery.app.trace")
        assert succeeded["request_id"] == response["X-Request-ID"]

    def test_a_task_queued_by_a_task_keeps_the_first_id(self, log_lines, memory_broker):
        with log_context(request_id="first-request"):
            queue_probe.apply_async(("pay-3",), producer=_broker["producer"])
        run_as_a_worker(memory_broker)  # queue_probe, which queues log_probe
        run_as_a_worker(memory_broker)  # log_probe

        task_lines = [line for line in log_lines() if line["message"] == "task for payment pay-3"]
        assert [line["request_id"] for line in task_lines] == ["first-request"]

    def test_a_task_nobody_queued_in_a_request_logs_with_its_own_id(self, log_lines, memory_broker):
        sent = log_probe.apply_async(("pay-4",), producer=_broker["producer"])
        run_as_a_worker(memory_broker)

        (line,) = [line for line in log_lines() if line["message"] == "task for payment pay-4"]
        assert line["request_id"] == sent.id
        assert log_context_fields() == {}


@shared_task(name="config.tests.queue_probe")
def queue_probe(payment_id: str) -> None:
    log_probe.apply_async((payment_id,), producer=_broker["producer"])


class TestScrubbing:
    def test_secrets_and_card_numbers_never_reach_a_log_line(self, log_lines):
        try:
            raise ValueError(f"Stripe refused {SECRET_KEY} for {EMAIL}")
        except ValueError:
            logger.exception(
                "charge of card %s with Authorization: Bearer %s failed",
                CARD,
                BEARER,
                extra={"email": EMAIL, "amount": 199900, "customer": f"<Customer {EMAIL}>"},
            )

        (line,) = lines_of(log_lines(), "config.tests.probe")
        text = json.dumps(line)
        for secret in (SECRET_KEY, CARD, CARD.replace(" ", ""), BEARER, EMAIL):
            assert secret not in text
        assert line["message"] == f"charge of card {FILTERED} with Authorization: Bearer {FILTERED} failed"
        assert "ValueError: Stripe refused" in line["exc_info"]
        assert (line["email"], line["amount"], line["customer"]) == (
            FILTERED,
            199900,
            f"<Customer {FILTERED}>",
        )

    def test_plain_lines_are_scrubbed_and_name_the_context_at_their_end(self):
        record = logging.LogRecord("payments", logging.WARNING, __file__, 1, "card %s", (CARD,), None)
        with log_context(request_id="req-1", subscription_id="sub-1"):
            LogContextFilter().filter(record)
        line = PlainFormatter("%(levelname)s %(name)s %(message)s").format(record)
        assert line == f"WARNING payments card {FILTERED} [request_id=req-1 subscription_id=sub-1]"


class TestJsonLines:
    def test_each_line_is_one_json_object_with_the_expected_keys(self, log_lines):
        with log_context(
            request_id="req-1", subscription_id="sub-1", payment_id="pay-1", idempotency_key="renewal:sub-1:1"
        ):
            logger.warning("renewal declined: %s", "insufficient_funds")
        logger.info("outside any request")

        inside, outside = lines_of(log_lines(), "config.tests.probe")
        assert list(inside)[:8] == [
            "timestamp",
            "level",
            "logger",
            "message",
            "request_id",
            "subscription_id",
            "payment_id",
            "idempotency_key",
        ]
        assert inside["level"] == "WARNING"
        assert inside["message"] == "renewal declined: insufficient_funds"
        assert inside["idempotency_key"] == "renewal:sub-1:1"
        assert datetime.fromisoformat(inside["timestamp"]).utcoffset().total_seconds() == 0
        assert set(outside) == {"timestamp", "level", "logger", "message"}

    def test_production_writes_json_lines_and_tests_plain_text(self, settings):
        assert settings.LOGGING["handlers"]["console"]["formatter"] == "plain"
        environment = {
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": "production-like-secret-key-0123456789abcdef",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",
            "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
        }
        script = (
            "import django, logging; django.setup(); "
            "logging.getLogger('payments').warning('card %s declined', '4242 4242 4242 4242')"
        )
        result = subprocess.run(  # noqa: S603 (a fixed command)
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        # Every line is JSON (django-axes says hello first).
        lines = [json.loads(text) for text in result.stderr.splitlines()]
        (line,) = lines_of(lines, "payments")
        assert (line["level"], line["logger"], line["message"]) == (
            "WARNING",
            "payments",
            f"card {FILTERED} declined",
        )
