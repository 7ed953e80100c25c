"""The money rules hold while everything goes wrong: bench/soak, shortened, in the suite.

The soak runs as the benchmark runs it (`python -m bench.soak`, a process of its own that
deploys gunicorn's two web processes, two Celery workers and beat on a throwaway database and a
Redis of its own, with the Stripe sandbox and a receiver of the signed events), on a few dozen
subscriptions over two renewal periods. The faults come at twice the benchmark's rates: 10% of
the sandbox's answers are errors, 10% time out, 10% are lost after it acted; half the webhooks
are sent twice and every one is held back up to a second, so they arrive out of order; one
worker is SIGKILLed and the soak's Redis is restarted once, losing every queued task.

The tests read the soak's JSON report and assert what a viewer or an accountant would notice.
Nothing here waits on the clock: the soak waits on conditions, each bounded generously.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

pytestmark = pytest.mark.e2e

SUBSCRIPTIONS = 24
PERIODS = 2
# Bounds a broken run only: a passing one takes about a minute, longer on a busy machine.
SOAK_TIMEOUT_SECONDS = 900
# What the soak configures itself; the suite's own values must not leak into its processes.
SUITE_VARIABLES = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "BILLING_CLOCK_FILE",
    "PROMETHEUS_MULTIPROC_DIR",
    "STRIPE_API_BASE",
    "STRIPE_RATE_LIMIT_REDIS_URL",
)


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the shortened soak once for the module; return its report and output."""
    report_path = tmp_path_factory.mktemp("soak") / "report.json"
    command = [
        sys.executable,
        "-m",
        "bench.soak",
        *("--subscriptions", str(SUBSCRIPTIONS), "--periods", str(PERIODS)),
        *("--new-viewers", "3", "--refunds", "3", "--spread", "4"),
        *("--fault-rate", "0.1", "--kill-every", "6", "--kills", "1"),
        *("--webhook-duplicates", "0.5", "--webhook-delay", "1"),
        # A database of this run's own: two suites on one machine never share one.
        *("--database", f"billing_bench_soak_faults_run{os.getpid()}"),
        *("--json", str(report_path), "--no-docs"),
    ]
    environment = {name: value for name, value in os.environ.items() if name not in SUITE_VARIABLES}
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments, no shell
        command,
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SOAK_TIMEOUT_SECONDS,
        check=False,
    )
    if not report_path.exists():
        pytest.fail(f"the soak wrote no report (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    report: dict[str, Any] = json.loads(Path(report_path).read_text())
    report["exit_code"], report["output"] = result.returncode, result.stdout
    return report


def test_the_faults_were_really_thrown(soak):
    assert all(hits > 0 for hits in soak["faults"].values()), soak["faults"]
    assert len(soak["faults"]) == 4  # errors, time-outs, lost answers (500 and silence)
    assert soak["workers_killed"] == 1
    assert soak["redis_restarts"] == 1
    assert soak["webhooks_sent_twice"] > 0
    assert soak["webhooks_overtaken"] > 0
    assert soak["refunds_full"] > 0
    assert soak["refunds_partial"] > 0
    assert soak["new_viewers_subscribed"] > 0


def test_every_subscription_is_charged_exactly_once_per_period(soak):
    assert soak["double_charges"] == []
    assert soak["not_charged_once"] == []
    # Each renewing subscription's periods, and each new viewer's first one, were checked.
    assert soak["periods_checked"] >= SUBSCRIPTIONS * PERIODS


def test_every_charge_gives_access_or_was_refunded(soak):
    assert soak["lost_payments"] == []
    assert soak["charges"] >= soak["renewals"] > 0


def test_our_books_agree_with_stripe_the_reconciliation_report_and_the_ledger(soak):
    assert soak["inconsistencies"] == []
    assert soak["reconciliation"] == []
    assert soak["money_days"] > 0
    assert soak["ledger"] == []
    assert soak["ledger_entries"] > 0


def test_every_event_reaches_the_other_services_once_signed_and_in_order(soak):
    assert soak["events"] == []
    assert soak["events_published"] > 0
    assert soak["events_received"] >= soak["events_published"]


def test_viewers_see_the_access_they_paid_for(soak):
    assert soak["access"] == []
    assert soak["access_polls"].get("200", 0) > 0


def test_no_server_error_and_nothing_left_unfinished(soak):
    assert soak["server_errors"] == []
    assert soak["unfinished"] == []


def test_the_metrics_show_what_happened(soak):
    metrics = soak["metrics"]
    assert metrics.get("renewals{outcome=renewed}", 0) >= soak["renewals"]
    provider_errors = {name: value for name, value in metrics.items() if name.startswith("provider calls")}
    provider_errors.pop("provider calls{outcome=ok}", None)
    assert sum(provider_errors.values()) > 0, metrics
    assert metrics.get("webhook events received{source=webhook,duplicate=true}", 0) > 0
    assert soak["metrics_refused_without_token"]


def test_the_soak_passes(soak):
    assert soak["ok"], soak["output"][-5000:]
    assert soak["exit_code"] == 0
