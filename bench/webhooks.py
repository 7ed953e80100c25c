"""Benchmark the webhook accept path (verify, store, queue) against the framework's floor, in one run.

    .venv/bin/python -m bench.webhooks --duration 10 --connections 32 --rounds 5

Creates the `billing_bench_webhooks` database, serves it with gunicorn on 127.0.0.1 and posts
Stripe `payment_intent.succeeded` events, signed with the webhook secret as Stripe signs them,
to `api/v1/webhooks/stripe/` with wrk, in turns with the same deliveries posted to the floor
(`bench/floor/`, which answers without reading them). A share of the deliveries (20% by
default) repeat an event delivered earlier. Each new event is stored and its processing task
queued on Redis, in a queue of the run's own that no worker serves: the figure is accepting
events, not processing them. At the end every event sent must be stored exactly once and
queued exactly once, which the run checks by counting rows and messages. Prints events/s,
the per-round ratios to the floor and their median (bench/stats.py), writes them to
docs/benchmarks.md and drops the database and the queue again.
"""

import argparse
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import django
import redis

from bench.options import gunicorn_arguments_add, positive_int
from bench.stats import median_ratio, ratios_text, round_ratios

if TYPE_CHECKING:
    from bench.inprocess import CpuCost
    from bench.webhooks_deliveries import Answers, DeliveryPlan
    from bench.wrk import WrkResult

TARGET_EVENTS_PER_SECOND = 300
FLOOR_PATH = "/bench/floor/"
WEBHOOK_PATH = "/api/v1/webhooks/stripe/"
DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_KEY = "bench/webhooks"
DOCS_HEADING = "## Webhook intake (`bench/webhooks`)"
# Deliveries written per run, as a multiple of what the warm-up's rate would send: wrk must not
# run out and begin the file again (which would turn every later delivery into a repeat).
HEADROOM = 3
CPU_DELIVERIES = 500
CPU_REPEATS = 3


@dataclass(frozen=True)
class Options:
    duration: int
    connections: int
    rounds: int
    threads: int
    warmup: int
    duplicates: float
    worker_class: str
    workers: int
    worker_threads: int
    write_docs: bool

    def command(self) -> str:
        return (
            f".venv/bin/python -m bench.webhooks --duration {self.duration} "
            f"--connections {self.connections} --rounds {self.rounds} --duplicates {self.duplicates:g}"
        )


@dataclass
class Round:
    floor: "WrkResult"
    webhooks: "WrkResult"
    answers: "Answers"
    # CPU per request, ms: gunicorn's processes, and the whole machine (wrk, PostgreSQL, Redis
    # and other people's work included).
    floor_server_ms: float = float("nan")
    webhook_server_ms: float = float("nan")
    floor_machine_ms: float = float("nan")
    webhook_machine_ms: float = float("nan")

    @property
    def events_per_second(self) -> float:
        return self.webhooks.requests_per_second

    @property
    def ratio(self) -> float:
        return self.webhooks.requests_per_second / self.floor.requests_per_second


@dataclass
class Check:
    """Whether every event sent was stored once and queued once."""

    deliveries: int = 0  # answered or not, every delivery wrk sent (warm-up included)
    repeats: int = 0
    distinct_events: int = 0
    answered_new: int = 0
    answered_duplicate: int = 0
    failed: int = 0
    resent: int = 0  # events in flight when a run stopped, sent again afterwards
    rows: int = 0
    rows_not_sent: int = 0
    queued: int = 0

    @property
    def passed(self) -> bool:
        return (
            self.rows == self.distinct_events
            and self.rows_not_sent == 0
            and self.queued == self.rows
            and self.answered_new <= self.distinct_events
            and self.failed == 0
        )


@dataclass
class Outcome:
    started_at: datetime
    load_average: float
    load_average_end: float = float("nan")
    postgres_version: str = ""
    wrk_version: str = ""
    server: str = ""
    body_bytes: int = 0
    rounds: list[Round] = field(default_factory=list)
    check: Check = field(default_factory=Check)
    transactions_per_delivery: float = float("nan")
    queries_new: int = 0
    queries_duplicate: int = 0
    floor_cpu: "CpuCost | None" = None
    webhook_cpu: "CpuCost | None" = None

    @property
    def ratios(self) -> list[float]:
        return round_ratios(
            targets=[r.webhooks.requests_per_second for r in self.rounds],
            baselines=[r.floor.requests_per_second for r in self.rounds],
        )

    @property
    def ratio(self) -> float:
        """Return the median of the per-round ratios webhooks/floor."""
        return median_ratio(self.ratios)

    @property
    def events_per_second(self) -> float:
        return statistics.median(r.events_per_second for r in self.rounds)

    @property
    def floor_per_second(self) -> float:
        return statistics.median(r.floor.requests_per_second for r in self.rounds)

    def median_of(self, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in self.rounds)

    @property
    def met(self) -> bool:
        return self.events_per_second >= TARGET_EVENTS_PER_SECOND

    @property
    def errors(self) -> int:
        return sum(r.floor.errors + r.webhooks.errors for r in self.rounds)


def _share(value: str) -> float:
    share = float(value)
    if not 0 <= share < 1:
        raise argparse.ArgumentTypeError("a share from 0 up to (not including) 1, e.g. 0.2")
    return share


def parse_options(argv: list[str] | None = None) -> Options:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=positive_int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=positive_int, default=32, help="wrk connections")
    parser.add_argument("--rounds", type=positive_int, default=5, help="floor + webhook runs to alternate")
    parser.add_argument("--threads", type=positive_int, default=1, help="wrk threads (default: 1)")
    parser.add_argument("--warmup", type=positive_int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument(
        "--duplicates", type=_share, default=0.2, help="share of deliveries repeating an event (default 0.2)"
    )
    gunicorn_arguments_add(parser)
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return Options(
        duration=args.duration,
        connections=args.connections,
        rounds=args.rounds,
        threads=args.threads,
        warmup=args.warmup,
        duplicates=args.duplicates,
        worker_class=args.worker_class,
        workers=args.workers,
        worker_threads=args.worker_threads,
        write_docs=not args.no_docs,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same way out as Ctrl-C: through every `finally` that cleans up.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    queue = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.webhooks_settings"
    os.environ["BENCH_WEBHOOKS_QUEUE"] = queue
    django.setup()
    from bench.database import database_drop

    try:
        outcome = _run(options, queue)
    except KeyboardInterrupt:
        print("\nInterrupted: cleaning up.", file=sys.stderr)
        return 130
    finally:
        _queue_delete(queue)
        database_drop()
        print("Dropped the billing_bench_webhooks database and the run's queue.")
    if options.write_docs:
        from bench.report import docs_write_section

        docs_write_section(
            path=DOCS_PATH, key=DOCS_KEY, heading=DOCS_HEADING, generated=_docs_block(options, outcome)
        )
        print(f"Wrote the figures to {DOCS_PATH}.")
    # A lost or doubled event fails the run; a missed target is a figure to read.
    return 0 if outcome.check.passed else 1


def _broker() -> redis.Redis:
    from django.conf import settings

    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _queued(queue: str) -> int:
    """Return how many task messages wait in the run's queue (kombu keeps a Redis list per queue)."""
    waiting: int = _broker().llen(queue)
    return waiting


def _queue_delete(queue: str) -> None:
    """Delete the run's queue and kombu's bookkeeping of it: every key that names it."""
    broker = _broker()
    for key in list(broker.scan_iter(match=f"*{queue}*")):
        broker.delete(key)


def _version(command: list[str]) -> str:
    import subprocess

    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    lines = (completed.stdout or completed.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _run(options: Options, queue: str) -> Outcome:
    # Imported here: these need django.setup(), which main() runs first.
    from django.conf import settings
    from django.db import connections

    from bench.cpu import machine_busy_seconds, process_cpu_seconds
    from bench.database import database_recreate, database_transaction_count, postgres_version
    from bench.server import GunicornConfig, gunicorn_running
    from bench.webhooks_deliveries import (
        DeliveryPlan,
        answers_parse,
        attempted,
        deliveries_write,
        lua_script_write,
        repeats_in,
    )
    from bench.wrk import WrkResult, wrk_ensure_installed, wrk_run

    wrk = wrk_ensure_installed()
    cores = os.cpu_count() or 1
    outcome = Outcome(started_at=datetime.now(UTC), load_average=os.getloadavg()[0])
    outcome.wrk_version = _version([wrk, "--version"]).split(" Copyright")[0].strip()
    gunicorn = GunicornConfig(
        worker_class=options.worker_class, workers=options.workers, threads=options.worker_threads
    )
    outcome.server = gunicorn.describe()
    print(f"Machine: {cores} cores, load average {outcome.load_average:.2f} (shared with other work).")
    print(f"Server: {outcome.server}; task queue {queue} on {settings.CELERY_BROKER_URL} (no worker).")
    print(
        f"Load: wrk, {options.threads} thread(s), {options.connections} connections, {options.duration}s per "
        f"run, {options.rounds} round(s) of floor then webhooks; {options.duplicates:.0%} repeats."
    )
    database_recreate()
    outcome.postgres_version = postgres_version()
    connections.close_all()

    plan = DeliveryPlan(
        secret=settings.STRIPE_WEBHOOK_SECRET, duplicate_share=options.duplicates, gap=2 * options.connections
    )
    check = outcome.check
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as scratch:
        directory = Path(scratch)
        script = lua_script_write(directory)
        with gunicorn_running(config=gunicorn, log_path=directory / "gunicorn.log") as server:

            def load(path: str, seconds: int, deliveries_path: Path) -> tuple[WrkResult, "Answers"]:
                result = wrk_run(
                    wrk=wrk,
                    url=f"{server.base_url}{path}",
                    script=script,
                    connections=options.connections,
                    threads=options.threads,
                    duration=seconds,
                    script_args=[str(deliveries_path), str(options.threads)],
                )
                return result, answers_parse(result.output)

            def cpu() -> tuple[float, float]:
                return process_cpu_seconds(server.pid), machine_busy_seconds()

            def deliver(seconds: int, count: int) -> Round:
                """Post one file of deliveries to the floor, then to the webhook endpoint."""
                batch = plan.batch(count)
                deliveries_path = deliveries_write(directory / "deliveries.txt", batch)
                before = cpu()
                floor, _ = load(FLOOR_PATH, seconds, deliveries_path)
                between = cpu()
                webhooks, answers = load(WEBHOOK_PATH, seconds, deliveries_path)
                after = cpu()
                if answers.wrapped:
                    print(f"  WARNING: wrk ran out of deliveries {answers.wrapped} time(s).")
                sent = attempted(batch, answers.sent_per_thread)
                check.deliveries += len(sent)
                check.repeats += repeats_in(sent, plan.sent_event_ids)
                check.answered_new += answers.new
                check.answered_duplicate += answers.duplicate
                check.failed += answers.failed
                plan.mark_sent(sent)
                return Round(
                    floor,
                    webhooks,
                    answers,
                    floor_server_ms=(between[0] - before[0]) * 1000 / max(floor.requests, 1),
                    webhook_server_ms=(after[0] - between[0]) * 1000 / max(webhooks.requests, 1),
                    floor_machine_ms=(between[1] - before[1]) * 1000 / max(floor.requests, 1),
                    webhook_machine_ms=(after[1] - between[1]) * 1000 / max(webhooks.requests, 1),
                )

            transactions_before = database_transaction_count()
            print(f"Warming up ({options.warmup}s per endpoint)...")
            warm = deliver(options.warmup, options.warmup * 3000).webhooks
            outcome.body_bytes = round(statistics.mean(len(delivery.body) for delivery in plan.sent_events()))
            per_run = int(warm.requests_per_second * options.duration * HEADROOM) + 1000
            header = (
                f"{'round':>5} | {'floor req/s':>11} {'p50 ms':>7} {'p99 ms':>7} | {'events/s':>8} "
                f"{'p50 ms':>7} {'p99 ms':>7} {'new':>6} {'dup':>6} | {'webhooks/floor':>14} | "
                f"{'server CPU ms floor/webhook':>27}"
            )
            print(header)
            print("-" * len(header))
            for number in range(1, options.rounds + 1):
                round_ = deliver(options.duration, per_run)
                outcome.rounds.append(round_)
                floor, webhooks, answers = round_.floor, round_.webhooks, round_.answers
                print(
                    f"{number:>5} | {floor.requests_per_second:>11.1f} {_ms(floor.p50_ms):>7} "
                    f"{_ms(floor.p99_ms):>7} | {webhooks.requests_per_second:>8.1f} {_ms(webhooks.p50_ms):>7} "
                    f"{_ms(webhooks.p99_ms):>7} {answers.new:>6} {answers.duplicate:>6} | {round_.ratio:>14.2f} | "
                    f"{round_.floor_server_ms:>13.2f} / {round_.webhook_server_ms:>11.2f}"
                )
            time.sleep(1)  # the requests wrk left in flight finish
            check.resent = _resend_missing(server.base_url, plan)
    time.sleep(1.5)  # PostgreSQL publishes the workers' counts once their connections are closed
    transactions = database_transaction_count() - transactions_before
    webhook_requests = check.deliveries + check.resent
    outcome.transactions_per_delivery = transactions / webhook_requests if webhook_requests else float("nan")
    _count_stored(check, plan.sent_event_ids, queue)
    outcome.load_average_end = os.getloadavg()[0]
    _summary_print(options, outcome)
    _in_process(outcome, plan)
    return outcome


def _resend_missing(base_url: str, plan: "DeliveryPlan") -> int:
    """Send again, once each, the events wrk sent whose request it cut short when its run ended.

    wrk stops a run by closing its connections; a request in flight then may or may not have
    been stored. Stripe would retry such a delivery; so does this, so that at the end every
    event sent must be stored.
    """
    import urllib.request

    from payments.models import WebhookEvent
    from payments.sandbox.webhooks import signature_header

    stored = set(WebhookEvent.objects.values_list("event_id", flat=True))
    missing = [delivery for delivery in plan.sent_events() if delivery.event_id not in stored]
    for delivery in missing:
        request = urllib.request.Request(
            f"{base_url}{WEBHOOK_PATH}",
            data=delivery.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": signature_header(delivery.body, plan.secret, int(time.time())),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise RuntimeError(f"resending {delivery.event_id} answered {response.status}")
    return len(missing)


def _count_stored(check: Check, sent_ids: set[str], queue: str) -> None:
    """Count the stored events and the queued tasks against the distinct events sent."""
    from payments.models import WebhookEvent

    stored = list(WebhookEvent.objects.values_list("event_id", flat=True))
    check.distinct_events = len(sent_ids)
    check.rows = len(stored)
    check.rows_not_sent = len(set(stored) - sent_ids)
    check.queued = _queued(queue)


def _in_process(outcome: Outcome, plan: "DeliveryPlan") -> None:
    """Count one delivery's queries (new, repeated) and the CPU of a delivery and of the floor."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.inprocess import cpu_per_call, post

    application = WSGIHandler()
    batch = plan.batch(200 + CPU_REPEATS * CPU_DELIVERIES)

    def send(path: str, number: int) -> None:
        delivery = batch[number]
        status, _ = post(
            application, path=path, body=delivery.body, headers={"Stripe-Signature": delivery.signature}
        )
        if status != 200:
            raise RuntimeError(f"{path} answered {status} in-process")

    for number in range(200):  # warm up, and open the persistent connection
        send(WEBHOOK_PATH, number)
        send(FLOOR_PATH, number)
    seen = plan.sent_event_ids | {delivery.event_id for delivery in batch[:200]}
    new = next(delivery for delivery in batch[200:] if delivery.event_id not in seen)
    for field_name, delivery in (("queries_new", new), ("queries_duplicate", new)):
        with CaptureQueriesContext(connection) as captured:
            post(
                application,
                path=WEBHOOK_PATH,
                body=delivery.body,
                headers={"Stripe-Signature": delivery.signature},
            )
        setattr(outcome, field_name, len(captured.captured_queries))

    def sender(path: str, offset: int) -> Callable[[int], None]:
        return lambda number: send(path, offset + number)

    floors, webhooks = [], []
    for repeat in range(CPU_REPEATS):
        # The floor gets the same deliveries as the endpoint measured after it.
        offset = 200 + repeat * CPU_DELIVERIES
        floors.append(cpu_per_call(sender(FLOOR_PATH, offset), calls=CPU_DELIVERIES))
        webhooks.append(cpu_per_call(sender(WEBHOOK_PATH, offset), calls=CPU_DELIVERIES))
    outcome.floor_cpu = min(floors, key=_cpu_total)
    outcome.webhook_cpu = min(webhooks, key=_cpu_total)
    print(
        f"In-process: queries per delivery {outcome.queries_new} (new event), {outcome.queries_duplicate} "
        f"(repeat); CPU per request (best of {CPU_REPEATS} x {CPU_DELIVERIES}): floor "
        f"{_cpu_text(outcome.floor_cpu)}, webhook {_cpu_text(outcome.webhook_cpu)}."
    )


def _cpu_total(cost: "CpuCost | None") -> float:
    if cost is None:
        return float("nan")
    return cost.python_us + (cost.postgres_us or 0.0)


def _cpu_text(cost: "CpuCost | None") -> str:
    if cost is None:
        return "?"
    if cost.postgres_us is None:
        return f"{cost.python_us:.0f} µs (Python; PostgreSQL not measurable here)"
    return (
        f"{cost.python_us + cost.postgres_us:.0f} µs "
        f"({cost.python_us:.0f} Python + {cost.postgres_us:.0f} PostgreSQL)"
    )


def _summary_print(options: Options, o: Outcome) -> None:
    c = o.check
    print(
        f"Median events/s: {o.events_per_second:.1f} (floor {o.floor_per_second:.1f} req/s). "
        f"Target >= {TARGET_EVENTS_PER_SECOND}: {'met' if o.met else 'NOT met'}."
    )
    print(f"Ratio webhooks/floor, median of the per-round ratios ({ratios_text(o.ratios)}): {o.ratio:.2f}")
    if o.errors:
        print(f"WARNING: {o.errors} socket errors or non-2xx answers during the runs.")
    print(
        f"Deliveries sent: {c.deliveries:,} ({c.repeats:,} repeats, {c.repeats / max(c.deliveries, 1):.1%}) "
        f"of {c.distinct_events:,} distinct events; answered new {c.answered_new:,}, duplicate "
        f"{c.answered_duplicate:,}, failed {c.failed}; {c.resent} cut short by the end of a run and sent again."
    )
    print(
        f"Stored events: {c.rows:,} for {c.distinct_events:,} distinct events sent ({c.rows_not_sent} never sent); "
        f"tasks queued: {c.queued:,}. Each stored once and queued once: {'yes' if c.passed else 'NO'}."
    )
    print(
        f"PostgreSQL transactions per webhook request (server-side count): {o.transactions_per_delivery:.2f}"
    )
    print(
        f"CPU per request, median of the rounds: gunicorn {o.median_of('floor_server_ms'):.2f} ms floor, "
        f"{o.median_of('webhook_server_ms'):.2f} ms webhook; the whole machine {o.median_of('floor_machine_ms'):.2f} "
        f"and {o.median_of('webhook_machine_ms'):.2f} ms (wrk, PostgreSQL, Redis and other work included)."
    )


def _docs_block(options: Options, o: Outcome) -> str:
    """Return the Markdown of the run's figures and what they mean."""
    from django.conf import settings

    from bench.report import markdown_paragraph, markdown_table

    c = o.check
    rows = [
        [
            str(number),
            f"{r.floor.requests_per_second:.0f}",
            _ms(r.floor.p50_ms),
            _ms(r.floor.p99_ms),
            f"{r.events_per_second:.0f}",
            _ms(r.webhooks.p50_ms),
            _ms(r.webhooks.p99_ms),
            f"{r.answers.new:,} / {r.answers.duplicate:,}",
            f"{r.ratio:.2f}",
            f"{r.floor_server_ms:.2f} / {r.webhook_server_ms:.2f}",
        ]
        for number, r in enumerate(o.rounds, start=1)
    ]
    rows.append(
        [
            "**median**",
            f"**{o.floor_per_second:.0f}**",
            "",
            "",
            f"**{o.events_per_second:.0f}**",
            "",
            "",
            "",
            f"**{o.ratio:.2f}**",
            f"{o.median_of('floor_server_ms'):.2f} / {o.median_of('webhook_server_ms'):.2f}",
        ]
    )
    figures = markdown_table(
        [
            "round",
            "floor req/s",
            "floor p50 ms",
            "floor p99 ms",
            "events/s",
            "webhook p50 ms",
            "webhook p99 ms",
            "answered new / duplicate",
            "webhooks/floor",
            "server CPU ms per request, floor / webhook",
        ],
        rows,
    )
    met = "met" if o.met else "NOT met"
    errors = f" ({o.errors} socket errors or non-2xx answers.)" if o.errors else ""
    verdict = "every event sent was stored once and queued once" if c.passed else "**CHECK FAILED**"
    blocks = [
        f"_Generated by `bench/webhooks.py` on {o.started_at:%Y-%m-%d %H:%M} UTC; rerun it to refresh "
        "this block. Notes written by hand follow it._",
        f"```\n{options.command()}\n```",
        f"**Machine:** {os.cpu_count()} CPU cores ({platform.machine()}), shared by wrk, gunicorn, "
        f"PostgreSQL and Redis, and during this run also by other engineers' work (load average "
        f"{o.load_average:.2f} at the start, {o.load_average_end:.2f} at the end). Python "
        f"{platform.python_version()}, PostgreSQL {o.postgres_version}, {o.wrk_version}.",
        f"**Server:** {o.server}, `bench.webhooks_settings` (`bench.settings`: DEBUG off, persistent "
        "database connections with health checks, metrics in gunicorn's multiprocess mode, as in "
        f"production). The processing task goes to Redis (`{settings.CELERY_BROKER_URL}`), to a queue "
        "of the run's own that **no worker serves**: the figure is the accept path (verify the "
        "signature, store the event, queue its task), not processing, which workers do at their own "
        "pace from the queue (and the reconciliation job from the table).",
        f"**Load:** wrk, {options.threads} thread(s), {options.connections} connections, "
        f"{options.duration}s per run after {options.warmup}s of warm-up per endpoint, floor and webhooks "
        f"alternated {options.rounds} times. Each request is a Stripe `payment_intent.succeeded` event "
        f"(about {o.body_bytes:,} bytes of JSON, built by the offline sandbox's object builders) with its "
        "`Stripe-Signature` header, signed with the webhook secret a moment before the run; "
        f"{options.duplicates:.0%} of the deliveries repeat an event sent at least "
        f"{2 * options.connections} deliveries earlier, as Stripe's retries and duplicate deliveries do. "
        "The floor (`bench/floor/`, a DRF view that answers a constant body) receives the same requests "
        "and does not read them.",
        figures,
        f"**Events/s, median of the rounds: {o.events_per_second:.0f}. Target ≥ "
        f"{TARGET_EVENTS_PER_SECOND}: {met}. Webhooks/floor, median of the per-round ratios "
        f"({ratios_text(o.ratios)}): {o.ratio:.2f}.**{errors}",
        f"**Each event once:** wrk sent {c.deliveries:,} deliveries (warm-up included) of "
        f"{c.distinct_events:,} distinct events, {c.repeats:,} of them ({c.repeats / max(c.deliveries, 1):.1%}) "
        f"repeats; the service answered {c.answered_new:,} as new and {c.answered_duplicate:,} as "
        f"duplicates ({c.failed} failed). {c.resent} deliveries that wrk cut short at the end of a run, "
        "and that had not been stored, were sent again afterwards, as Stripe retries an unanswered one. "
        f"At the end the table held **{c.rows:,} events for {c.distinct_events:,} distinct ids sent** "
        f"({c.rows_not_sent} that were never sent) and the queue **{c.queued:,} tasks**: {verdict}.",
        "**Where the time goes.** Server CPU per request is what gunicorn's processes used over the "
        f"run (Linux /proc), over the requests wrk counted: a webhook costs the server "
        f"{o.median_of('webhook_server_ms'):.2f} ms against the floor's {o.median_of('floor_server_ms'):.2f} ms "
        "(medians of the rounds); the whole machine (wrk, PostgreSQL, Redis, and other people's work) "
        f"spent {o.median_of('webhook_machine_ms'):.2f} and {o.median_of('floor_machine_ms'):.2f} ms per "
        f"request. **Per delivery:** {o.queries_new} queries for a new event and {o.queries_duplicate} for a repeat "
        "(counted in-process through the WSGI handler); under load PostgreSQL counted "
        f"{o.transactions_per_delivery:.2f} transactions per webhook request (server-side, every webhook "
        "run). **CPU per request**, in-process (best of "
        f"{CPU_REPEATS} x {CPU_DELIVERIES} through the WSGI handler, new events and repeats as above): "
        f"floor {_cpu_text(o.floor_cpu)}, webhook {_cpu_text(o.webhook_cpu)}; floor/webhook "
        f"{_cpu_total(o.floor_cpu) / _cpu_total(o.webhook_cpu):.2f}. This leaves out HTTP, gunicorn and wrk.",
    ]
    return "\n\n".join(markdown_paragraph(block) for block in blocks)


if __name__ == "__main__":
    sys.exit(main())
