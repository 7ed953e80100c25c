"""/metrics tells the people on call what happened: a journey moves the counters, backlogs show their age.

The counters live in one registry per process, shared by every test of the session, so each
test compares two scrapes (the delta), never absolute values.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from billing.tests.conftest import monthly_tariff, paid_subscription  # noqa: F401 (fixtures used here)
from config.metrics import process_registry
from config.metrics_backlog import BacklogCollector, _read_quietly, _redis_client, _redis_queue_keys
from config.metrics_worker import guarded, serve_metrics
from config.tests.test_deployment_files import (  # noqa: F401 (live_environment: a fixture used here)
    PROBE_DEADLINE_SECONDS,
    PRODUCTION_HOST,
    VENV_BIN,
    free_port,
    live_environment,
)
from core import clock
from notifications.models import EventEndpoint
from payments.gateways.base import GatewayEvent
from payments.gateways.errors import TemporaryGatewayError
from payments.models import CheckoutSession, ReconciliationRun, WebhookEvent, WebhookEventStatus
from payments.services.renewals import RenewalOutcome, renewal_run, renewals_due
from payments.services.webhooks import EventProcessingFailed, webhook_event_process, webhook_event_record
from payments.tests.stripe_signing import event_body, sign

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_URL = "/api/v1/webhooks/stripe/"
WEBHOOK_SECRET = "whsec_billing_tests"


class Scrape:
    """One scrape of /metrics: every sample, by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """Return a sample's value (0 for a series not there yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str) -> bool:
        return any(sample_name == name for sample_name, _ in self.samples)

    def label_values(self) -> set[str]:
        return {value for _, labels in self.samples for _, value in labels}


def scrape(client, **headers: str) -> Scrape:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    return Scrape(response.content.decode())


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def post_event(client, body: bytes, signature: str | None = None):
    return client.post(
        WEBHOOK_URL,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature if signature is not None else sign(body, WEBHOOK_SECRET),
    )


# --- a viewer's journey, as the counters see it ---------------------------------------------


def test_a_journey_moves_the_counters(client, api_client, viewer_client, paid_subscription, stripe_sandbox):  # noqa: F811
    before = scrape(client)

    # Subscribe (POST /subscriptions/) and pay at the provider; the viewer looks at the subscription.
    subscription = paid_subscription("alice")
    detail = viewer_client("alice").get(f"/api/v1/subscriptions/{subscription.pk}/")
    assert detail.status_code == 200

    # The provider tells us of the paid checkout twice, and once with a signature not ours.
    session_id = CheckoutSession.objects.get(subscription=subscription).provider_session_id
    body = event_body(
        "evt_journey_1", "checkout.session.completed", {"id": session_id, "object": "checkout.session"}
    )
    assert post_event(api_client, body).json() == {"received": True, "duplicate": False}
    assert post_event(api_client, body).json() == {"received": True, "duplicate": True}
    assert post_event(api_client, body, sign(body, "whsec_not_ours")).status_code == 400
    handled = webhook_event_process(event_pk=WebhookEvent.objects.get(event_id="evt_journey_1").pk)
    assert handled is not None and handled.status == "processed"

    # A month later the card is charged again.
    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.NOT_DUE

    after = scrape(client)
    http = "billing_http_requests_total"
    assert moved(before, after, http, route="/api/v1/subscriptions/", method="POST", status="201") == 1
    detail_route = "/api/v1/subscriptions/<uuid:subscription_id>/"
    assert moved(before, after, http, route=detail_route, method="GET", status="200") == 1
    assert moved(before, after, http, route=WEBHOOK_URL, method="POST", status="200") == 2
    assert moved(before, after, http, route=WEBHOOK_URL, method="POST", status="400") == 1
    duration = "billing_http_request_duration_seconds_count"
    assert moved(before, after, duration, route=detail_route, method="GET") == 1

    calls = "billing_provider_calls_total"
    assert (
        moved(before, after, calls, provider="stripe", operation="create_checkout_session", outcome="ok") == 1
    )
    assert moved(before, after, calls, provider="stripe", operation="charge_off_session", outcome="ok") == 1
    assert (
        moved(
            before,
            after,
            "billing_provider_call_duration_seconds_count",
            provider="stripe",
            operation="charge_off_session",
        )
        == 1
    )

    assert moved(before, after, "billing_renewals_total", outcome="renewed") == 1
    assert moved(before, after, "billing_renewals_total", outcome="not_due") == 1

    received = "billing_webhook_events_received_total"
    assert moved(before, after, received, provider="stripe", source="webhook", duplicate="false") == 1
    assert moved(before, after, received, provider="stripe", source="webhook", duplicate="true") == 1
    rejected = "billing_webhook_events_rejected_total"
    assert moved(before, after, rejected, provider="stripe", reason="invalid_signature") == 1
    assert (
        moved(before, after, "billing_webhook_events_handled_total", provider="stripe", outcome="processed")
        == 1
    )

    # No label names whom or what a figure is about.
    labels = after.label_values()
    assert not [value for value in labels if str(subscription.pk) in value or "alice" in value]
    assert not [value for value in labels if session_id in value]


def test_a_failing_event_is_counted_failed(client, monkeypatch):
    stored, _ = webhook_event_record(
        provider="stripe", event=_event("evt_fails", "checkout.session.completed")
    )

    def broken(provider, fact):
        raise RuntimeError("the handler broke")

    monkeypatch.setattr("payments.services.webhooks._act_on", broken)
    before = scrape(client)
    with pytest.raises(EventProcessingFailed):
        webhook_event_process(event_pk=stored.pk)
    after = scrape(client)

    assert (
        moved(before, after, "billing_webhook_events_handled_total", provider="stripe", outcome="failed") == 1
    )
    assert after.value("billing_webhook_backlog_events", provider="stripe", status="failed") == 1


def test_a_renewal_the_provider_fails_is_counted_as_an_error(
    client,
    paid_subscription,  # noqa: F811 (the fixture imported above)
    memory_provider,
    monkeypatch,
):
    subscription = paid_subscription("dave")
    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))

    def provider_down(charge):
        raise TemporaryGatewayError("the provider is down", code="api_error")

    monkeypatch.setattr(memory_provider.gateway, "charge_off_session", provider_down)
    before = scrape(client)
    with pytest.raises(TemporaryGatewayError):
        renewal_run(subscription_id=subscription.pk)
    after = scrape(client)
    assert moved(before, after, "billing_renewals_total", outcome="error") == 1
    assert moved(before, after, "billing_renewals_total", outcome="renewed") == 0


# --- the token -------------------------------------------------------------------------------


class TestToken:
    TOKEN = "metrics-token-0123456789abcdef"

    @pytest.fixture(autouse=True)
    def _token(self, settings):
        settings.METRICS_TOKEN = self.TOKEN

    @pytest.mark.parametrize(
        ("authorization", "code"),
        [
            (None, "not_authenticated"),
            ("Bearer wrong-token", "authentication_failed"),
            (f"Basic {TOKEN}", "authentication_failed"),
            (f"Bearer {TOKEN}x", "authentication_failed"),
        ],
    )
    def test_a_scrape_without_the_token_is_refused_in_json(self, client, authorization, code):
        headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
        response = client.get("/metrics", **headers)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == code
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"billing_" not in response.content

    def test_the_token_opens_the_metrics(self, client):
        found = scrape(client, HTTP_AUTHORIZATION=f"Bearer {self.TOKEN}")
        assert found.has("billing_webhook_backlog_events")

    def test_without_a_token_set_anyone_may_scrape(self, client, settings):
        settings.METRICS_TOKEN = ""
        assert client.get("/metrics").status_code == 200

    def test_the_scrapes_themselves_are_not_counted(self, client):
        client.get("/metrics")  # refused
        found = scrape(client, HTTP_AUTHORIZATION=f"Bearer {self.TOKEN}")
        assert not [value for value in found.label_values() if "metrics" in value]


# --- labels ---------------------------------------------------------------------------------


def test_routes_are_labelled_by_their_pattern_never_by_the_path(client, viewer_client):
    someone_elses = uuid.uuid4()
    viewer = viewer_client("bob", "bob@example.com")
    before = scrape(client)

    assert viewer.get(f"/api/v1/subscriptions/{someone_elses}/").status_code == 404
    assert viewer.get(f"/api/v1/internal/access/{someone_elses}/").status_code == 403
    assert viewer.get(f"/api/v1/no-such-thing/{someone_elses}/").status_code == 404
    assert client.get(f"/nowhere/{someone_elses}/").status_code == 404
    assert client.generic("BREW", "/healthz/").status_code == 200

    after = scrape(client)
    http = "billing_http_requests_total"
    detail = "/api/v1/subscriptions/<uuid:subscription_id>/"
    assert moved(before, after, http, route=detail, method="GET", status="404") == 1
    access = "/api/v1/internal/access/<str:user_id>/"
    assert moved(before, after, http, route=access, method="GET", status="403") == 1
    assert moved(before, after, http, route="^api/", method="GET", status="404") == 1  # the API's catch-all
    assert moved(before, after, http, route="unmatched", method="GET", status="404") == 1
    assert moved(before, after, http, route="/healthz/", method="other", status="200") == 1
    labels = after.label_values()
    assert not [value for value in labels if str(someone_elses) in value or "bob" in value or "BREW" in value]


# --- backlogs, read when scraped --------------------------------------------------------------


def _event(event_id: str, event_type: str = "customer.created") -> GatewayEvent:
    return GatewayEvent(
        id=event_id,
        type=event_type,
        created=clock.now(),
        object_id="cs_backlog" if event_type.startswith("checkout") else "cus_backlog",
        object={"id": "cus_backlog", "object": "customer"},
    )


def test_an_unprocessed_webhook_event_shows_its_age(client):
    stored, _ = webhook_event_record(
        provider="stripe", event=_event("evt_backlog_1", "checkout.session.completed")
    )
    # An event the service does not act on is stored ignored: it is never in the backlog.
    webhook_event_record(provider="stripe", event=_event("evt_backlog_ignored"))
    clock.advance(timedelta(minutes=10))

    found = scrape(client)
    assert found.value("billing_webhook_backlog_events", provider="stripe", status="received") == 1
    age = found.value("billing_webhook_backlog_oldest_age_seconds", provider="stripe", status="received")
    assert 600 <= age < 660

    WebhookEvent.objects.filter(pk=stored.pk).update(
        status=WebhookEventStatus.PROCESSED
    )  # a worker handled it
    drained = scrape(client)
    assert drained.value("billing_webhook_backlog_events", provider="stripe", status="received") == 0
    assert (
        drained.value("billing_webhook_backlog_oldest_age_seconds", provider="stripe", status="received") == 0
    )


def test_renewals_waiting_past_their_due_time_show_how_long(client, paid_subscription, memory_provider):  # noqa: F811
    subscription = paid_subscription("erin")
    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=30))

    found = scrape(client)
    assert (
        found.value("billing_renewals_due", kind="renewal")
        == len(renewals_due(now=clock.now(), limit=100))
        == 1
    )
    assert 1800 <= found.value("billing_renewals_due_oldest_age_seconds", kind="renewal") < 1860
    assert found.value("billing_renewals_due", kind="retry") == 0

    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
    renewed = scrape(client)
    assert renewed.value("billing_renewals_due", kind="renewal") == 0
    assert renewed.value("billing_renewals_due_oldest_age_seconds", kind="renewal") == 0


def test_undelivered_events_and_unsent_emails_show_their_age(client, paid_subscription, memory_provider):  # noqa: F811
    EventEndpoint.objects.create(name="access service", url="http://127.0.0.1:9/events")
    paid_subscription("carol")  # a receipt to email, access.granted to deliver
    clock.advance(timedelta(hours=2))

    found = scrape(client)
    assert found.value("billing_outbox_pending_deliveries") >= 1
    assert 7200 <= found.value("billing_outbox_oldest_pending_age_seconds") < 7260
    assert found.value("billing_notices_pending") >= 1
    assert 7200 <= found.value("billing_notices_oldest_pending_age_seconds") < 7260


def test_the_last_reconciliation_and_ledger_check_are_reported(client):
    from ledger.models import LedgerCheckRun

    for kind, status, fixed in [
        ("events", "ok", 0),
        ("events", "ok", 3),
        ("events", "skipped", 0),  # another run held the job: says nothing of the provider
        ("pending_payments", "failed", 0),
    ]:
        ReconciliationRun.objects.create(kind=kind, status=status, fixed=fixed)
        clock.advance(timedelta(seconds=1))
    LedgerCheckRun.objects.create(balanced=True, entries=10, unbalanced_entries=0, mismatch_count=0)
    clock.advance(timedelta(minutes=1))
    LedgerCheckRun.objects.create(balanced=False, entries=12, unbalanced_entries=1, mismatch_count=2)

    found = scrape(client)
    assert found.value("billing_reconciliation_mismatches", provider="stripe", kind="events") == 3
    assert found.value("billing_reconciliation_last_run_failed", provider="stripe", kind="events") == 0
    assert (
        found.value("billing_reconciliation_last_run_failed", provider="stripe", kind="pending_payments") == 1
    )
    never_ran = (
        "billing_reconciliation_last_run_age_seconds",
        frozenset({("provider", "stripe"), ("kind", "unbooked_charges")}),
    )
    assert never_ran not in found.samples
    assert found.value("billing_ledger_check_mismatches") == 2
    assert found.value("billing_ledger_check_unbalanced_entries") == 1


def test_celery_queue_lengths_come_from_the_redis_broker(client, settings):
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    redis = _redis_client(settings.CELERY_BROKER_URL)
    key = _redis_queue_keys(prefix + "celery")[0]
    marker = json.dumps({"metrics-test": str(uuid.uuid4())})
    redis.lpush(key, marker)
    try:
        waiting = sum(redis.llen(k) for k in _redis_queue_keys(prefix + "celery"))
        assert scrape(client).value("billing_celery_queue_length", queue="celery") == waiting
    finally:
        redis.lrem(key, 1, marker)


def test_the_file_broker_has_no_queue_length_and_no_error(client, settings):
    settings.CELERY_BROKER_URL = "filesystem://localhost/"
    found = scrape(client)
    assert not found.has("billing_celery_queue_length")
    assert found.has("billing_webhook_backlog_events")


def test_a_figure_that_cannot_be_read_leaves_the_others(caplog):
    def broken() -> list:
        raise ConnectionError("broker down")

    assert _read_quietly(broken) == []
    assert "could not read broken" in caplog.text
    assert any(metric.name == "billing_webhook_backlog_events" for metric in BacklogCollector().collect())


def test_each_backlog_is_read_on_an_index():
    """The scrape runs every few seconds: its queries must not read whole tables."""
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # tiny test tables: ask what the planner *could* use
        try:
            plans = {
                name: _plan(cursor, sql)
                for name, sql in {
                    "webhook": "SELECT provider, status, count(*), min(received_at) FROM payments_webhookevent "
                    "WHERE status IN ('received', 'failed') GROUP BY provider, status",
                    "outbox": "SELECT count(*), min(created_at) FROM notifications_eventdelivery WHERE status = 'pending'",
                    "notices": "SELECT count(*), min(created_at) FROM notifications_notice WHERE status = 'pending'",
                    "reconciliation": "SELECT status, fixed, started_at FROM payments_reconciliationrun "
                    "WHERE kind = 'events' AND provider = 'stripe' AND status IN ('ok', 'failed') "
                    "ORDER BY started_at DESC LIMIT 1",
                    "ledger": "SELECT checked_at FROM ledger_ledgercheckrun ORDER BY checked_at DESC LIMIT 1",
                    "renewals": "SELECT count(*), min(current_period_end) FROM billing_subscription "
                    "WHERE status IN ('active', 'trialing') AND autopay AND NOT cancel_at_period_end "
                    "AND current_period_end <= now()",
                    "retries": "SELECT count(*), min(next_renewal_attempt_at) FROM billing_subscription "
                    "WHERE status = 'past_due' AND next_renewal_attempt_at <= now()",
                }.items()
            }
        finally:
            cursor.execute("RESET enable_seqscan")
    assert {name: "Seq Scan" in plan for name, plan in plans.items()} == dict.fromkeys(plans, False), plans


def _plan(cursor, sql: str) -> str:
    cursor.execute(f"EXPLAIN {sql}")
    return "\n".join(row[0] for row in cursor.fetchall())


# --- several processes: gunicorn's workers, a Celery worker ------------------------------------


def test_the_scrape_adds_up_every_process_that_wrote_to_the_directory(tmp_path, monkeypatch):
    writer = (
        "from core.metrics import record_renewal\n"
        "record_renewal('renewed'); record_renewal('renewed'); record_renewal('declined')\n"
    )
    for _ in range(2):  # two worker processes, both gone by now
        subprocess.run(  # noqa: S603 (a fixed snippet of this repository's code)
            [sys.executable, "-c", writer],
            cwd=ROOT,
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
            check=True,
            timeout=60,
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    from prometheus_client import generate_latest

    found = Scrape(generate_latest(process_registry()).decode())
    assert found.value("billing_renewals_total", outcome="renewed") == 4
    assert found.value("billing_renewals_total", outcome="declined") == 2


def _gunicorn_hooks() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    source = (ROOT / "config" / "gunicorn.conf.py").read_text()
    exec(compile(source, "gunicorn.conf.py", "exec"), namespace)  # noqa: S102 (this repository's config)
    return namespace


def test_gunicorn_starts_from_an_empty_directory_and_forgets_dead_workers_live_gauges(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"left by the previous server")
    (tmp_path / "gauge_livesum_456.db").write_bytes(b"")
    hooks = _gunicorn_hooks()

    hooks["on_starting"](None)
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "gauge_livesum_456.db").write_bytes(b"")
    (tmp_path / "counter_456.db").write_bytes(b"")
    hooks["child_exit"](None, type("Worker", (), {"pid": 456})())
    assert [path.name for path in tmp_path.iterdir()] == ["counter_456.db"]
    hooks["on_exit"](None)  # a directory it was given is not its to remove
    assert tmp_path.is_dir()


def test_gunicorn_without_a_directory_makes_its_own_and_removes_it(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # as if unset; put back after the test
    hooks = _gunicorn_hooks()
    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.name == f"billing-metrics-{os.getpid()}"
    assert _gunicorn_hooks()["OWN_METRICS_DIR"] == str(made)  # reloading the config keeps it
    hooks["on_starting"](None)
    assert made.is_dir()

    hooks["on_exit"](None)
    assert not made.exists()


@pytest.fixture
def worker_metrics(settings) -> Iterator[str]:
    settings.METRICS_TOKEN = "worker-metrics-token-0123456789"
    server = serve_metrics(0, address="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_a_celery_worker_serves_its_counters_behind_the_token(worker_metrics):
    from core.metrics import record_webhook_handled

    record_webhook_handled(provider="stripe", outcome="processed")
    with pytest.raises(HTTPError) as refused:
        urllib.request.urlopen(worker_metrics, timeout=5)  # noqa: S310 (a local test server)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"]["code"] == "not_authenticated"

    request = urllib.request.Request(  # noqa: S310 (a local test server)
        worker_metrics, headers={"Authorization": "Bearer worker-metrics-token-0123456789"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        found = Scrape(answer.read().decode())
    assert found.value("billing_webhook_events_handled_total", provider="stripe", outcome="processed") >= 1
    assert not found.has("billing_webhook_backlog_events")  # the web's /metrics reads those


def test_an_empty_worker_token_guards_nothing():
    app = guarded(lambda environ, start_response: [b"ok"], "")
    assert app({}, lambda *args: None) == [b"ok"]


@pytest.mark.e2e
@pytest.mark.django_db
def test_one_scrape_of_gunicorn_counts_every_workers_requests(live_environment, tmp_path):  # noqa: F811
    token = "gunicorn-metrics-token-0123456789"
    environment = {
        **live_environment,
        "METRICS_TOKEN": token,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603 (the image's own server and config)
            [
                str(VENV_BIN / "gunicorn"),
                "--config",
                "config/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "config.wsgi:application",
            ],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_answering(f"{base}/healthz/", process, log)
        before = _scrape_over_http(f"{base}/metrics", token)
        for _ in range(20):  # each on a new connection, so both workers answer some
            _get(f"{base}/healthz/")
        totals = {
            moved(
                before,
                _scrape_over_http(f"{base}/metrics", token),
                "billing_http_requests_total",
                route="/healthz/",
                method="GET",
                status="200",
            )
            for _ in range(6)  # whichever worker answers the scrape
        }
        assert totals == {20}, log.read_text()[-2000:]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Host": PRODUCTION_HOST, **(headers or {})})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (a local test server)
        return answer.read()


def _scrape_over_http(url: str, token: str) -> Scrape:
    return Scrape(_get(url, {"Authorization": f"Bearer {token}"}).decode())


def _wait_until_answering(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + PROBE_DEADLINE_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            _get(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer:\n{log.read_text()}")
            time.sleep(0.2)


@pytest.mark.e2e
def test_a_prefork_workers_processes_add_up_on_its_metrics_port(monkeypatch, tmp_path):
    from billing.tasks import renew_subscription
    from billing.tests.workers import Worker
    from config.celery import app as celery_app

    token, port = "prefork-metrics-token-0123456789", free_port()
    (tmp_path / "counter_999999.db").write_bytes(b"left by the previous worker")
    monkeypatch.setenv("METRICS_TOKEN", token)
    monkeypatch.setenv("METRICS_WORKER_PORT", str(port))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    celery_app.control.purge()
    worker = Worker("metrics", stripe_api_base="")
    try:
        worker.wait_until("ready.")
        for _ in range(3):  # subscriptions that do not exist: each run ends "locked", in a pool process
            renew_subscription.delay(str(uuid.uuid4()))
        deadline = time.monotonic() + 30
        while sum("succeeded" in line for line in worker.output) < 3:
            assert time.monotonic() < deadline, "".join(worker.output[-40:])
            time.sleep(0.05)
        found = _scrape_over_http(f"http://127.0.0.1:{port}/metrics", token)
    finally:
        worker.stop()
        celery_app.control.purge()

    assert found.value("billing_renewals_total", outcome="locked") == 3
    assert not (tmp_path / "counter_999999.db").exists()
