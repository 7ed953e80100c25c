"""Soak under faults: the billing service through months of renewals while everything goes wrong.

    .venv/bin/python -m bench.soak --subscriptions 10000 --periods 3

Creates the throwaway `billing_bench_soak_faults` database with N subscriptions, each with a
card saved at the offline Stripe sandbox, and deploys the service as production runs it: two
web processes (gunicorn), two Celery workers and beat, on PostgreSQL and a Redis of the soak's
own, the sandbox in its own process delivering webhooks, and an endpoint of the "other
services" receiving the signed events. Then, for each period, it moves the billing clock past
every subscription's period end, so the renewals come due, while
- viewers poll `GET /api/v1/access/`, new ones subscribe and pay their Checkout page;
- staff refund random payments, in full and in part;
- the sandbox answers errors, times out, and loses answers after acting (`--fault-rate` of
  requests each), sends some webhooks twice and holds each back a random while, so events
  arrive out of order;
- a worker is SIGKILLed every few seconds and replaced, and the Redis is restarted once,
  losing every queued task.
When the faults stop and the reconciliation jobs have run until a pass changes nothing, it
checks the money rules (bench/soak_checks.py): every subscription charged exactly once per
period, no payment lost, our rows consistent with Stripe's, the reconciliation report and
`manage.py ledger_check --json` clean, every event delivered to the other services in order,
every viewer told the access they paid for, no 5xx, no deadlock. Prints the figures, writes
them to docs/benchmarks.md (and, with `--json`, to a file the test suite reads), stops every
process and drops the database again, also on Ctrl-C. Asserts nothing about time; exits 1 if
any rule broke. tests/e2e/test_soak.py runs it on a few dozen subscriptions.
"""

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import django

from bench.options import positive_int
from bench.renewals_processes import SandboxProcess
from bench.soak_findings import metrics_record
from bench.soak_phases import CELERY_QUEUE, soak_under_faults
from bench.soak_processes import BeatProcess, EventReceiver, PrivateRedis, WorkerCrew
from bench.soak_report import SoakReport, docs_block

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_KEY = "bench/soak"
DOCS_HEADING = "## Soak under faults (`bench/soak`)"
DATABASE_NAME = "billing_bench_soak_faults"
WEBHOOK_PATH = "/api/v1/webhooks/stripe/"
# The soak's own credentials, known to its processes only (a test key: the sandbox takes no other).
STRIPE_SECRET_KEY = "sk_test_bench_soak_faults"
STRIPE_WEBHOOK_SECRET = "whsec_bench_soak_faults"
EVENT_SIGNING_SECRET = "bench-soak-event-signing-secret"
METRICS_TOKEN = "bench-soak-metrics-token"


@dataclass(frozen=True)
class Options:
    """The soak's command line: its size, the traffic, the faults and the deployment."""

    subscriptions: int
    periods: int
    new_viewers: int
    refunds: int
    spread_seconds: float
    fault_rate: float
    kill_every: float
    kills: int
    redis_restart: bool
    webhook_duplicates: float
    webhook_delay: float
    timeout_hold: float
    stripe_timeout: float
    rate: int
    concurrency: int
    web_threads: int
    pollers: int
    polls_per_second: float
    access_sample: int
    database: str
    seed: int
    json_path: Path | None
    docs_path: Path | None

    def command(self) -> str:
        """Return the command that reruns this soak's size and faults."""
        return (
            f".venv/bin/python -m bench.soak --subscriptions {self.subscriptions} --periods {self.periods} "
            f"--new-viewers {self.new_viewers} --refunds {self.refunds} --fault-rate {self.fault_rate:g} "
            f"--kill-every {self.kill_every:g}" + (f" --kills {self.kills}" if self.kills else "")
        )


def _share(value: str) -> float:
    share = float(value)
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return share


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return seconds


def parse_options(argv: list[str] | None = None) -> Options:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--subscriptions", type=positive_int, default=10_000, help="renewing subscriptions (default 10000)")
    add("--periods", type=positive_int, default=3, help="billing periods the clock moves through (default 3)")
    add("--new-viewers", type=int, default=None, help="viewers who subscribe in each period (default N/50)")
    add("--refunds", type=int, default=None, help="refunds staff make in each period (default N/200)")
    add("--spread", type=_seconds, default=60.0, help="seconds a period's viewers and refunds spread over")
    add("--fault-rate", type=_share, default=0.05, help="share of errors, of time-outs and of lost answers")
    add("--kill-every", type=_seconds, default=5.0, help="seconds between worker kills (0: none)")
    add("--kills", type=int, default=0, help="kill at most this many workers (0: no limit)")
    add("--no-redis-restart", action="store_true", help="leave the soak's Redis running")
    add("--webhook-duplicates", type=_share, default=0.2, help="share of webhooks sent twice (default 0.2)")
    add("--webhook-delay", type=_seconds, default=2.0, help="longest hold-back of a webhook, seconds")
    add("--timeout-hold", type=_seconds, default=3.0, help="seconds a time-out holds the connection")
    add("--stripe-timeout", type=_seconds, default=2.0, help="the service's STRIPE_TIMEOUT_SECONDS")
    add("--rate", type=int, default=100, help="outgoing Stripe requests per second (0: no limit)")
    add("--concurrency", type=positive_int, default=8, help="threads per Celery worker (default 8)")
    add("--web-threads", type=positive_int, default=4, help="threads per gunicorn worker (default 4)")
    add("--pollers", type=positive_int, default=4, help="viewers polling access at once (default 4)")
    add("--polls-per-second", type=float, default=40.0, help="access polls per second, all pollers together")
    add(
        "--access-sample", type=int, default=2000, help="viewers whose access is checked over HTTP at the end"
    )
    add("--database", default=DATABASE_NAME, help=f"the throwaway database (default {DATABASE_NAME})")
    add("--seed", type=int, default=None, help="seed of the soak's random choices (default: random)")
    add("--json", type=Path, default=None, help="also write the report as JSON to this file")
    add("--docs", type=Path, default=DOCS_PATH, help="Markdown file to write the figures to")
    add("--no-docs", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    n = args.subscriptions
    if not args.database.startswith(f"{DATABASE_NAME}"):
        parser.error(f"--database must start with {DATABASE_NAME}: the soak drops it at the end")
    return Options(
        subscriptions=n,
        periods=args.periods,
        new_viewers=args.new_viewers if args.new_viewers is not None else max(n // 50, 2),
        refunds=args.refunds if args.refunds is not None else max(n // 200, 2),
        spread_seconds=args.spread,
        fault_rate=args.fault_rate,
        kill_every=args.kill_every,
        kills=args.kills,
        redis_restart=not args.no_redis_restart,
        webhook_duplicates=args.webhook_duplicates,
        webhook_delay=args.webhook_delay,
        timeout_hold=args.timeout_hold,
        stripe_timeout=args.stripe_timeout,
        rate=args.rate,
        concurrency=args.concurrency,
        web_threads=args.web_threads,
        pollers=args.pollers,
        polls_per_second=args.polls_per_second,
        access_sample=args.access_sample,
        database=args.database,
        seed=args.seed if args.seed is not None else uuid.uuid4().int % 1_000_000,
        json_path=args.json,
        docs_path=None if args.no_docs else args.docs,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# --- the deployment ------------------------------------------------------------------------------


@dataclass
class Deployment:
    """Everything the soak started, for the phases to use and the clean-up to stop."""

    scratch: Path
    redis: PrivateRedis | None = None
    sandbox: SandboxProcess | None = None
    receiver: EventReceiver | None = None
    crew: WorkerCrew | None = None
    beat: BeatProcess | None = None
    database_created: bool = False

    def stop(self) -> None:
        """Stop what runs and drop what was created, whatever state the run got to."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if self.beat is not None:
            self.beat.stop()
        if self.crew is not None:
            self.crew.stop()
        if self.receiver is not None:
            self.receiver.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.database_created:
            from bench.database import database_drop

            database_drop()
            print(f"Dropped the {os.environ['BENCH_DATABASE_URL'].rsplit('/', 1)[1]} database.")
        shutil.rmtree(self.scratch, ignore_errors=True)


def _environment(options: Options, deployment: Deployment) -> dict[str, str]:
    """Return what every process of the soak (this one too) is configured by."""
    assert deployment.redis is not None and deployment.sandbox is not None and deployment.receiver is not None
    return {
        "DJANGO_SETTINGS_MODULE": "bench.soak_settings",
        "BENCH_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{options.database}",
        "CELERY_BROKER_URL": deployment.redis.url(0),
        "BILLING_CLOCK_FILE": str(deployment.scratch / "billing-clock.json"),
        "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "STRIPE_API_BASE": deployment.sandbox.base_url,
        "STRIPE_TIMEOUT_SECONDS": str(options.stripe_timeout),
        "STRIPE_RATE_LIMIT_PER_SECOND": str(options.rate),
        "STRIPE_RATE_LIMIT_REDIS_URL": deployment.redis.url(1),
        "EVENT_ENDPOINTS": deployment.receiver.url,
        "EVENT_SIGNING_SECRET": EVENT_SIGNING_SECRET,
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "METRICS_TOKEN": METRICS_TOKEN,
    }


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    deployment = Deployment(scratch=Path(tempfile.mkdtemp(prefix="bench-soak-")))
    started_at, load = datetime.now(UTC), os.getloadavg()[0]
    try:
        report = _run(options, deployment)
    except KeyboardInterrupt:
        print("\nInterrupted: cleaning up.", file=sys.stderr)
        return 130
    finally:
        deployment.stop()
    print("\n".join(["", *report.lines()]))
    if options.json_path is not None:
        import json

        options.json_path.write_text(json.dumps(report.as_json(), indent=2, default=str))
    if options.docs_path is not None:
        from bench.report import docs_write_section
        from bench.soak_subscribe import _commit

        block = docs_block(options, report, started_at=started_at, load=load, commit=_commit())
        docs_write_section(path=options.docs_path, key=DOCS_KEY, heading=DOCS_HEADING, generated=block)
        print(f"Wrote the figures to {options.docs_path}.")
    return 0 if report.ok else 1


def _run(options: Options, deployment: Deployment) -> SoakReport:
    step = time.monotonic()
    print(f"Seed {options.seed}. Starting a private Redis, the Stripe sandbox and the events' receiver...")
    deployment.redis = PrivateRedis(deployment.scratch / "redis.log")
    deployment.sandbox = SandboxProcess(deployment.scratch / "sandbox.log")
    deployment.receiver = EventReceiver(EVENT_SIGNING_SECRET)
    os.environ.update(_environment(options, deployment))
    django.setup()
    # The service's retries warn at every fault the sandbox throws, here too (refunds, the
    # reconciliation runs): the report counts them instead.
    logging.getLogger().setLevel(logging.ERROR)
    # This process's own counts stay in its memory: /metrics shows the deployment's. Chosen when
    # prometheus_client is first imported, so before the processes' shared directory is named.
    import prometheus_client  # noqa: F401

    from bench.database import database_recreate

    print(f"Creating and migrating {options.database}...")
    deployment.database_created = True
    database_recreate()
    seeded = _dataset(options, deployment.sandbox)
    metrics_directory = deployment.scratch / "metrics"
    metrics_directory.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_directory)
    seconds = {"set-up": time.monotonic() - step}

    from bench.server import GunicornConfig, gunicorn_running
    from bench.soak_subscribe import SandboxControl

    config = GunicornConfig(worker_class="gthread", workers=2, threads=options.web_threads)
    # The web processes count in the directory the workers count in, so one scrape of /metrics
    # shows the whole deployment, the killed workers' counts included.
    with gunicorn_running(
        config=config,
        log_path=deployment.scratch / "gunicorn.log",
        environment={"PROMETHEUS_MULTIPROC_DIR": str(metrics_directory)},
    ) as server:
        deployment.sandbox.post(
            "/config",
            {
                "webhook_url": server.base_url + WEBHOOK_PATH,
                "webhook_secret": STRIPE_WEBHOOK_SECRET,
                "webhook_duplicate_chance": options.webhook_duplicates,
                "webhook_delay_max": options.webhook_delay,
                "timeout_hold_seconds": options.timeout_hold,
                "clock_file": os.environ["BILLING_CLOCK_FILE"],
            },
        )
        deployment.crew = WorkerCrew(2, queue=CELERY_QUEUE, concurrency=options.concurrency)
        deployment.beat = BeatProcess(deployment.scratch / "beat.log")
        seconds["deployment start"] = time.monotonic() - step - seconds["set-up"]
        print(f"Serving on {server.base_url} ({config.describe()}); 2 workers and beat running.")
        report = soak_under_faults(
            options, deployment, server.base_url, SandboxControl(deployment.sandbox.base_url), seeded
        )
        report.seconds = {**seconds, **report.seconds}
        metrics_record(report, server.base_url, token=METRICS_TOKEN)
    return report


def _dataset(options: Options, sandbox: SandboxProcess) -> dict[Any, datetime]:
    """Create the renewing subscriptions, each with a card at the sandbox; return their first paid period.

    Each is in a period that runs now and was paid before the soak began; the first period the
    soak must see charged is the next one.
    """
    from django.contrib.auth.models import User
    from django.utils import timezone

    from bench.renewals_dataset import billing_anchor, cards_save, subscriptions_create, tariff_create
    from bench.soak_traffic import STAFF_USERNAME
    from billing.periods import add_months

    started = time.monotonic()
    tariff = tariff_create()
    cards = cards_save(count=options.subscriptions, api_base=sandbox.base_url)
    anchor = billing_anchor(timezone.now())
    ids = subscriptions_create(tariff=tariff, cards=cards, anchor=anchor, period=1)
    User.objects.create_superuser(STAFF_USERNAME, "soak-staff@example.com", None)
    print(
        f"Created {len(ids):,} accounts with a card saved at the sandbox and a monthly subscription "
        f"in {time.monotonic() - started:.0f}s."
    )
    return dict.fromkeys(ids, add_months(anchor, 2))


# --- the soak itself ------------------------------------------------------------------------------


if __name__ == "__main__":
    sys.exit(main())
