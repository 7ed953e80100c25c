"""Benchmark renewals: N due subscriptions renewed by two Celery workers against the sandbox.

    .venv/bin/python -m bench.renewals --subscriptions 10000 --latencies 0,300 --rate 25

Creates the `billing_bench_renewals` database with N accounts, each with a card saved at the
offline Stripe sandbox and an active subscription whose period has ended. Starts the sandbox
and two Celery worker processes, then for each simulated Stripe latency queues the renewals
once (`enqueue_due_renewals`) and waits until every subscription is renewed. It measures
renewals per second, the requests reaching the sandbox (busiest sliding 1-second window, mean
rate) against the configured outgoing rate limit, which is the ceiling, the CPU a renewal
costs the workers, the sandbox and the whole machine (bench/cpu.py), and the database queries
(and time) one renewal makes in a table of N subscriptions and of a small sample. Prints a
table, writes it to docs/benchmarks.md, and stops the processes and drops the database again,
also on Ctrl-C. At 25 requests/s, 10,000 renewals take at least 400 s per latency.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import django

from bench.cpu import machine_busy_seconds
from bench.options import positive_int
from bench.renewals_processes import SandboxProcess, WorkerProcess
from bench.renewals_report import docs_block, summary_print

if TYPE_CHECKING:
    from bench.renewals_stats import LatencyRun, QueryCount

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_KEY = "bench/renewals"
DOCS_HEADING = "## Renewals (`bench/renewals`)"
POLL_SECONDS = 0.25
PROGRESS_SECONDS = 15
# With no renewal done for this long, something is broken: stop and show the workers' output.
STALL_SECONDS = 60


@dataclass(frozen=True)
class Options:
    subscriptions: int
    latencies: list[int]
    rate: int
    workers: int
    pool: str
    concurrency: int
    sample: int
    docs_path: Path | None

    def command(self) -> str:
        workers = (
            ""
            if (self.workers, self.pool, self.concurrency) == (2, "threads", 8)
            else (f" --workers {self.workers} --pool {self.pool} --concurrency {self.concurrency}")
        )
        return (
            f".venv/bin/python -m bench.renewals --subscriptions {self.subscriptions} "
            f"--latencies {','.join(map(str, self.latencies))} --rate {self.rate}{workers}"
        )

    @property
    def timeout_seconds(self) -> float:
        """Return how long one latency's run may take before it is reported unfinished."""
        floor = self.subscriptions / self.rate if self.rate else self.subscriptions / 50
        return 2 * floor + 180


@dataclass
class Outcome:
    """What one benchmark run measured, for the summary and the docs."""

    started_at: datetime
    load_average: float
    postgres_version: str = ""
    setup_seconds: float = float("nan")
    runs: list["LatencyRun"] = field(default_factory=list)
    queries: list["QueryCount"] = field(default_factory=list)

    @property
    def queries_constant(self) -> bool:
        """Return whether a renewal typically makes as many queries among N subscriptions as among few."""
        return len(self.queries) == 2 and len({query.typical for query in self.queries}) == 1


def _latencies(value: str) -> list[int]:
    try:
        latencies = [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("comma-separated milliseconds, e.g. 0,300") from exc
    if not latencies or any(latency < 0 for latency in latencies):
        raise argparse.ArgumentTypeError("comma-separated milliseconds, e.g. 0,300")
    return latencies


def parse_options(argv: list[str] | None = None) -> Options:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.renewals", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=positive_int, default=10_000, help="due subscriptions (N)")
    parser.add_argument(
        "--latencies",
        type=_latencies,
        default=[0, 300],
        help="simulated Stripe latencies, ms (default 0,300)",
    )
    parser.add_argument(
        "--rate", type=int, default=25, help="outgoing Stripe requests per second allowed (0 = no limit)"
    )
    parser.add_argument("--workers", type=positive_int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument(
        "--pool", choices=["threads", "prefork"], default="threads", help="Celery pool (default threads)"
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=8, help="tasks at once per worker (default 8)"
    )
    parser.add_argument(
        "--sample", type=positive_int, default=100, help="renewals whose queries are counted, and the small N"
    )
    parser.add_argument("--docs", type=Path, default=DOCS_PATH, help="Markdown file to write the figures to")
    parser.add_argument("--no-docs", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error("--rate must be 0 or more")
    if args.sample > args.subscriptions:
        parser.error("--sample cannot be larger than --subscriptions")
    return Options(
        subscriptions=args.subscriptions,
        latencies=args.latencies,
        rate=args.rate,
        workers=args.workers,
        pool=args.pool,
        concurrency=args.concurrency,
        sample=args.sample,
        docs_path=None if args.no_docs else args.docs,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same way out as Ctrl-C: through every `finally` that cleans up.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    # Progress lines appear as they happen, also when the output goes to a file.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    scratch = Path(tempfile.mkdtemp(prefix="bench-renewals-"))
    queue = f"bench-renewals-{uuid.uuid4().hex[:8]}"
    sandbox: SandboxProcess | None = None
    workers: list[WorkerProcess] = []
    database_created = False
    try:
        # The sandbox needs no Django; the settings module reads its address from the environment.
        sandbox = SandboxProcess(scratch / "sandbox.log")
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "bench.renewals_settings",
                "STRIPE_API_BASE": sandbox.base_url,
                "STRIPE_RATE_LIMIT_PER_SECOND": str(options.rate),
                "BENCH_RENEWALS_QUEUE": queue,
                "BILLING_CLOCK_FILE": str(scratch / "billing-clock.json"),
            }
        )
        django.setup()
        database_created = True
        outcome = _run(options, sandbox, workers, queue)
    except KeyboardInterrupt:
        print("\nInterrupted: cleaning up.", file=sys.stderr)
        return 130
    finally:
        _clean_up(sandbox, workers, queue, database_created, scratch)
    block = docs_block(options, outcome)
    if options.docs_path is not None:
        from bench.report import docs_write_section

        docs_write_section(path=options.docs_path, key=DOCS_KEY, heading=DOCS_HEADING, generated=block)
        print(f"Wrote the figures to {options.docs_path}.")
    else:
        print(f"\n{DOCS_HEADING}\n\n{block.strip()}\n")
    finished = all(run.finished for run in outcome.runs)
    return 0 if finished and outcome.queries_constant else 1


def _clean_up(
    sandbox: SandboxProcess | None,
    workers: list[WorkerProcess],
    queue: str,
    database_created: bool,
    scratch: Path,
) -> None:
    """Stop what the run started and drop what it created, whatever state it got to."""
    # A second Ctrl-C must not cut the clean-up short; every step below has its own time limit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if database_created:
        from config.celery import app

        app.control.purge()  # the run's own queue: workers stop after their current tasks
    for worker in workers:
        worker.stop()
    if workers:
        print(f"Stopped {len(workers)} workers.")
    if sandbox is not None:
        sandbox.stop()
        print("Stopped the Stripe sandbox.")
    if database_created:
        import redis
        from django.conf import settings

        from bench.database import database_drop
        from payments.gateways.ratelimit import KEY_PREFIX, limit_name

        # The queue and kombu's bookkeeping of it: every key that names the run's queue.
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        for key in list(broker.scan_iter(match=f"*{queue}*")):
            broker.delete(key)
        redis.Redis.from_url(settings.STRIPE_RATE_LIMIT_REDIS_URL).delete(
            KEY_PREFIX + limit_name("stripe", settings.STRIPE_SECRET_KEY)
        )
        database_drop()
        print("Dropped the billing_bench_renewals database.")
    shutil.rmtree(scratch, ignore_errors=True)


def _run(options: Options, sandbox: SandboxProcess, workers: list[WorkerProcess], queue: str) -> Outcome:
    # Imported here: these need django.setup(), which main() runs first.
    from django.utils import timezone

    from bench.database import database_recreate, postgres_version
    from bench.renewals_dataset import billing_anchor, cards_save, subscriptions_create, tariff_create

    cores = os.cpu_count() or 1
    outcome = Outcome(started_at=datetime.now(UTC), load_average=os.getloadavg()[0])
    print(f"Machine: {cores} cores, load average {outcome.load_average:.2f} (shared with other work).")
    capacity = options.workers * options.concurrency
    print(
        f"Workers: {options.workers} Celery processes, {options.pool} pool x {options.concurrency}: "
        f"{capacity} renewals at once. Outgoing rate limit: "
        + (f"{options.rate} requests/s, shared through Redis." if options.rate else "none.")
    )
    for latency in options.latencies:
        if options.rate and capacity < options.rate * latency / 1000 * 1.2:
            print(
                f"  Note: at {latency} ms, {capacity} renewals at once cannot reach {options.rate}/s "
                f"(about {options.rate * latency / 1000:.0f} calls must be in flight)."
            )

    step = time.monotonic()
    database_recreate()
    outcome.postgres_version = postgres_version()
    tariff = tariff_create()
    cards = cards_save(count=options.subscriptions, api_base=sandbox.base_url)
    # The sample whose queries are counted comes first, alone in the table (the baseline);
    # the others join it in the period its renewal moved it into, so all are due together.
    anchor = billing_anchor(timezone.now())
    sample = subscriptions_create(tariff=tariff, cards=cards[: options.sample], anchor=anchor)
    small = _count_queries(sample)
    subscriptions_create(
        tariff=tariff, cards=cards[options.sample :], anchor=anchor, period=1, first=options.sample
    )
    outcome.setup_seconds = time.monotonic() - step
    print(
        f"Created {options.subscriptions:,} accounts with a card saved at the sandbox and a due "
        f"monthly subscription in {outcome.setup_seconds:.0f}s."
    )

    for number in range(1, options.workers + 1):
        workers.append(
            WorkerProcess(
                f"bench-renewals-{number}",
                queue=queue,
                pool=options.pool,
                concurrency=options.concurrency,
            )
        )
    for worker in workers:
        worker.wait_ready()
    print(f"{len(workers)} workers ready.")

    for latency in options.latencies:
        outcome.runs.append(_renew_all(options, sandbox, workers, latency, queue))

    sandbox.set_latency(0)
    outcome.queries = [_count_queries(sample), small]
    summary_print(options, outcome)
    return outcome


def _make_all_due() -> int:
    """Move the billing clock past every subscription's period end; return how many are due."""
    from django.db.models import Max

    from billing.models import Subscription
    from core import clock

    latest = Subscription.objects.aggregate(latest=Max("current_period_end"))["latest"]
    if latest is not None and latest >= clock.now():
        clock.advance(latest - clock.now() + timedelta(minutes=1))
    return Subscription.objects.filter(current_period_end__lte=clock.now()).count()


def _renew_all(
    options: Options, sandbox: SandboxProcess, workers: list[WorkerProcess], latency: int, queue: str
) -> "LatencyRun":
    """Queue every due renewal once and wait until the workers have renewed them all."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.database import database_transaction_count
    from bench.renewals_stats import LatencyRun
    from billing.models import Subscription, SubscriptionStatus
    from billing.tasks import enqueue_due_renewals
    from core import clock

    due = _make_all_due()
    due_at = clock.now()
    sandbox.set_latency(latency)
    sandbox.delete("/requests")
    cache.clear()  # the "already queued" marks of an earlier run
    retries_before = sum(worker.retries for worker in workers)
    errors_before = sum(worker.errors for worker in workers)
    notification_tasks_before = _notification_tasks(queue)
    run = LatencyRun(latency_ms=latency, due=due)
    print(f"\nLatency {latency} ms: renewing {due:,} due subscriptions.")

    transactions_before = database_transaction_count()
    cpu_before = (
        sum(worker.cpu_seconds() for worker in workers),
        sandbox.cpu_seconds(),
        machine_busy_seconds(),
    )
    started = time.monotonic()
    with CaptureQueriesContext(connection) as enqueue:
        queued = enqueue_due_renewals()
    run.enqueue_queries = len(enqueue.captured_queries)
    print(
        f"  queued {queued:,} renewal tasks in {time.monotonic() - started:.1f}s ({run.enqueue_queries} queries)."
    )

    still_due = Subscription.objects.filter(status=SubscriptionStatus.ACTIVE, current_period_end__lte=due_at)
    polls, remaining, last_report = 0, due, started
    last_progress = (due, started)
    while True:
        time.sleep(POLL_SECONDS)
        remaining = still_due.count()
        polls += 1
        now = time.monotonic()
        if remaining == 0:
            run.finished = True
            break
        for worker in workers:
            if not worker.alive():
                raise RuntimeError(f"worker {worker.name} died:\n{worker.tail()}")
        if remaining < last_progress[0]:
            last_progress = (remaining, now)
        elif now - last_progress[1] > STALL_SECONDS:
            tails = "\n".join(f"--- {worker.name}:\n{worker.tail()}" for worker in workers)
            raise RuntimeError(f"no renewal for {STALL_SECONDS}s; the workers said:\n{tails}")
        if now - started > options.timeout_seconds:
            print(f"  NOT finished after {options.timeout_seconds:.0f}s: {remaining:,} still due.")
            break
        if now - last_report >= PROGRESS_SECONDS:
            done = due - remaining
            print(f"  {done:,}/{due:,} renewed after {now - started:.0f}s ({done / (now - started):.1f}/s)")
            last_report = now
    run.wall_seconds = time.monotonic() - started
    run.worker_cpu_seconds = sum(worker.cpu_seconds() for worker in workers) - cpu_before[0]
    run.sandbox_cpu_seconds = sandbox.cpu_seconds() - cpu_before[1]
    run.machine_cpu_seconds = machine_busy_seconds() - cpu_before[2]
    time.sleep(1.5)  # PostgreSQL publishes an idle server process's counts within a second
    run.renewed = Subscription.objects.filter(current_period_end__gt=due_at).count()
    # The server's count, less this process's own: the enqueue job's queries (one transaction
    # each, in autocommit), the polls above and the two counting queries.
    run.transactions = database_transaction_count() - transactions_before - run.enqueue_queries - polls - 2
    run.worker_retries = sum(worker.retries for worker in workers) - retries_before
    run.worker_errors = sum(worker.errors for worker in workers) - errors_before
    run.notification_tasks = _notification_tasks(queue) - notification_tasks_before

    requests = sandbox.api_requests()
    run.failed_requests = sum(1 for request in requests if request["status"] not in (200, 402))
    run.record_requests([request["time"] for request in requests], rate=options.rate or None)
    print(
        f"  renewed {run.renewed:,} in {run.wall_seconds:.1f}s: {run.renewals_per_second:.1f} renewals/s; "
        f"{run.requests:,} Stripe requests, mean {run.requests_per_second:.1f}/s, "
        f"busiest 1-s window {run.busiest}"
    )
    return run


def _notification_tasks(queue: str) -> int:
    """Return how many notification tasks wait in their queue, which the workers leave alone.

    bench/renewals_settings.py routes them to "<the run's queue>-notifications".
    """
    import redis
    from django.conf import settings

    waiting: int = redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(f"{queue}-notifications")
    return waiting


def _count_queries(subscription_ids: list[Any]) -> "QueryCount":
    """Renew these subscriptions in this process, counting the queries each renewal makes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.renewals_stats import QueryCount
    from billing.models import Subscription
    from payments.services.renewals import RenewalOutcome, renewal_run

    _make_all_due()
    count = QueryCount(table_size=Subscription.objects.count())
    for subscription_id in subscription_ids:
        started, cpu_started = time.perf_counter(), time.process_time()
        with CaptureQueriesContext(connection) as captured:
            outcome = renewal_run(subscription_id=subscription_id)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if outcome != RenewalOutcome.RENEWED:
            raise RuntimeError(f"renewal of {subscription_id} ended {outcome}, not renewed")
        count.add(
            [query["sql"] for query in captured.captured_queries], seconds=seconds, cpu_seconds=cpu_seconds
        )
    print(
        f"Queries per renewal with {count.table_size:,} subscriptions: {count.text()} ({count.kinds_text()}); "
        f"median {count.median_ms:.1f} ms per renewal, {count.median_cpu_ms:.1f} ms of it this process's CPU"
    )
    return count


if __name__ == "__main__":
    sys.exit(main())
