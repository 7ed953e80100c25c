"""What bench/renewals prints and writes to docs/benchmarks.md: its figures, and what they mean."""

import os
import platform
from typing import TYPE_CHECKING

from bench.report import markdown_table

if TYPE_CHECKING:
    from bench.renewals import Options, Outcome
    from bench.renewals_stats import LatencyRun


def _ratio(value: float, rate: int) -> str:
    return f"{value / rate:.2f}" if rate else "-"


def summary_print(options: "Options", o: "Outcome") -> None:
    """Print the run's figures as a plain table."""
    print()
    rate = options.rate
    print(f"Configured outgoing rate (the ceiling): {f'{rate}/s' if rate else 'none'}")
    print(
        f"{'latency':>8} | {'renewed':>8} {'wall s':>7} {'renew/s':>8} | {'requests':>8} {'mean/s':>7} "
        f"{'busiest 1s':>10} {'bucket':>6} | {'mean/rate':>9} {'busiest/rate':>12}"
    )
    for run in o.runs:
        print(
            f"{run.latency_ms:>6}ms | {run.renewed:>8,} {run.wall_seconds:>7.1f} {run.renewals_per_second:>8.1f} | "
            f"{run.requests:>8,} {run.requests_per_second:>7.1f} {run.busiest:>10} {run.bucket or '-':>6} | "
            f"{_ratio(run.requests_per_second, rate):>9} {_ratio(run.busiest, rate):>12}"
        )
        if not run.finished:
            print(f"  NOT finished: {run.due - run.renewed:,} subscriptions were still due.")
        if run.failed_requests:
            print(f"  WARNING: {run.failed_requests} Stripe requests failed.")
        if run.worker_errors:
            print(f"  WARNING: the workers logged {run.worker_errors} errors.")
        print(f"  {run.notification_tasks:,} notification tasks queued (left to their own workers).")
        print(f"  {_cpu_text(run)}.")
    for query in o.queries:
        print(
            f"Queries per renewal, {query.table_size:,} subscriptions in the table: {query.text()}; "
            f"{query.median_ms:.1f} ms each at no latency ({query.median_cpu_ms:.1f} ms of Python)"
        )
    print(f"Queries per renewal constant in N: {'yes' if o.queries_constant else 'NO'}")


def _cpu_text(run: "LatencyRun") -> str:
    """Return the CPU one renewal cost, by whom, and how many cores the run kept busy."""
    cores_busy = run.machine_cpu_seconds / run.wall_seconds if run.wall_seconds > 0 else float("nan")
    return (
        f"CPU per renewal: workers {run.ms_per_renewal(run.worker_cpu_seconds):.1f} ms, sandbox "
        f"{run.ms_per_renewal(run.sandbox_cpu_seconds):.1f} ms; the whole machine "
        f"{run.ms_per_renewal(run.machine_cpu_seconds):.1f} ms (PostgreSQL, Redis, the benchmark and "
        f"other people's work included: {cores_busy:.2f} of {os.cpu_count()} cores busy on average)"
    )


def _pace_text(options: "Options", o: "Outcome") -> str:
    """Return what the runs say about the rate limit, in words that match the figures."""
    rate, capacity = options.rate, options.workers * options.concurrency
    if not rate:
        return "No rate limit was configured: the workers sent as fast as they and the sandbox could."
    reached = [run for run in o.runs if run.requests_per_second >= 0.95 * rate]
    missed = [run for run in o.runs if run not in reached]
    lines = []
    if reached:
        latencies = " and ".join(f"{run.latency_ms} ms" for run in reached)
        slowest = max(run.latency_ms for run in reached)
        room = (
            f" ({capacity} renewals in flight, each waiting {slowest} ms for Stripe, could send up to "
            f"{capacity * 1000 / slowest:.0f} requests/s)"
            if slowest
            else ""
        )
        lines.append(
            f"At {latencies} the workers could go faster than the limit{room}, so the limiter sets "
            f"the pace: the mean outgoing rate reaches the configured {rate}/s and renewals/s follows it."
        )
    cores = os.cpu_count() or 1
    for run in missed:
        in_flight = capacity * 1000 / (run.latency_ms + _engine_ms(o)) if run.latency_ms else float("nan")
        enough = in_flight >= rate
        ceiling = (
            f" Concurrency {'was not what held them' if enough else 'was one limit'}: {capacity} "
            f"renewals in flight, each waiting {run.latency_ms} ms for Stripe plus about "
            f"{_engine_ms(o):.0f} ms of its own work (with no latency, alone), allow up to "
            f"{in_flight:.0f}/s{'' if enough else f', below the {rate}/s'}."
            if run.latency_ms
            else ""
        )
        workers_ms = run.ms_per_renewal(run.worker_cpu_seconds)
        lines.append(
            f"At {run.latency_ms} ms the mean rate stayed at {run.requests_per_second:.1f}/s, "
            f"{run.requests_per_second / rate:.2f} of the limit: the engine, not the limiter, set the "
            f"pace.{ceiling} CPU was: the workers alone spent {workers_ms:.1f} ms of it per renewal, so "
            f"even with nothing else running this machine's {cores} cores could renew at most "
            f"{1000 * cores / workers_ms:.0f}/s at that cost, before PostgreSQL's share and the "
            f"sandbox's {run.ms_per_renewal(run.sandbox_cpu_seconds):.1f} ms; over the run the machine "
            f"was busy on {run.machine_cpu_seconds / run.wall_seconds:.2f} of its {cores} cores "
            f"({run.ms_per_renewal(run.machine_cpu_seconds):.0f} ms per renewal, other people's work "
            "included)."
        )
    worst = max(o.runs, key=lambda run: run.busiest)
    bucket = max(run.bucket for run in o.runs)
    if worst.busiest <= rate + 1 and bucket == 1:
        lines.append(
            f"No sliding second held more than {worst.busiest} requests, which is what a steady "
            f"{rate}/s puts in one (a request at each end), and no request ever came ahead of the "
            f"pace: the workers together never exceeded the configured rate."
        )
    else:
        lines.append(
            f"The limiter hands out slots 1/{rate} s apart on Redis's clock, and the pace never ran "
            f"ahead on average. The sandbox, though, counts a request when it arrives: after the worker "
            f"thread woke up, built and sent it and the sandbox's thread read it, which on this loaded "
            f"two-core machine takes from under a millisecond to tens of milliseconds. A request sent "
            f"late shares a second with the next slots' requests, hence a busiest sliding second of "
            f"{worst.busiest} ({worst.busiest / rate:.2f} x the rate; a steady {rate}/s puts {rate + 1} "
            f"in one). A token bucket at {rate}/s holding {bucket} tokens, as a provider's limiter "
            f"keeps, would have let every request in; configure the limit a little below the "
            f"provider's to keep that margin."
        )
    return "\n\n".join(lines)


def docs_block(options: "Options", o: "Outcome") -> str:
    """Return the Markdown of the run's figures and what they mean."""
    cores = os.cpu_count() or 1
    rate = options.rate
    rows = [
        [
            f"{run.latency_ms} ms",
            f"{run.renewed:,}" + ("" if run.finished else " (unfinished)"),
            f"{run.wall_seconds:.1f}",
            f"**{run.renewals_per_second:.1f}**",
            f"{run.requests:,}",
            f"{run.requests_per_second:.1f}",
            str(run.busiest),
            str(run.bucket or "-"),
            f"**{_ratio(run.requests_per_second, rate)}**",
            f"**{_ratio(run.busiest, rate)}**",
            f"{run.transactions_per_renewal:.2f}",
        ]
        for run in o.runs
    ]
    figures = markdown_table(
        [
            "Stripe latency",
            "renewed",
            "wall s",
            "renewals/s",
            "Stripe requests",
            "mean req/s",
            "busiest 1-s window",
            "bucket needed",
            "mean / rate",
            "busiest / rate",
            "PG transactions per renewal",
        ],
        rows,
    )
    if len(o.queries) == 2:
        large, small = o.queries
        queries = markdown_table(
            ["subscriptions in the table", "renewals counted", "queries per renewal"],
            [[f"{q.table_size:,}", f"{len(q.per_renewal):,}", q.text()] for q in (small, large)],
        )
        constant = "the same" if o.queries_constant else "NOT the same"
        query_text = (
            f"**Queries per renewal** (`renewal_run` in this process, counted with "
            f"`CaptureQueriesContext`): the same {len(small.per_renewal):,} subscriptions, first alone "
            f"in the table (the baseline), then among all {large.table_size:,} after the runs above:"
            f"\n\n{queries}\n\n"
            f"Ratio {large.table_size:,} / {small.table_size:,}: **{large.mean / small.mean:.2f}**: {constant} "
            f"number of queries whatever N ({large.kinds_text()}). The job that queues the renewals reads "
            f"due subscriptions in batches of {_batch_size()}: "
            + ", ".join(f"{run.enqueue_queries} queries for {run.due:,}" for run in o.runs[:1])
            + "."
        )
    else:
        query_text = "**Queries per renewal:** not measured (the run stopped before)."
    failed = sum(run.failed_requests for run in o.runs)
    retries = sum(run.worker_retries for run in o.runs)
    notifications = sum(run.notification_tasks for run in o.runs)
    renewed = sum(run.renewed for run in o.runs)
    log_note = (
        " The sandbox keeps the last 20,000 requests, so the request figures cover those only."
        if options.subscriptions > 19_000
        else ""
    )
    return f"""
_Generated by `bench/renewals.py` on {o.started_at:%Y-%m-%d %H:%M} UTC; rerun it to refresh this block._

```
{options.command()}
```

**Machine:** {cores} CPU cores ({platform.machine()}), shared by the benchmark, the sandbox, both
workers, PostgreSQL and Redis, and during this run also by other engineers' test runs (load
average {o.load_average:.2f} at the start). Python {platform.python_version()}, PostgreSQL {o.postgres_version}.

**Set-up:** {options.subscriptions:,} billing accounts, each with its own customer and card saved at the
offline Stripe sandbox (`python -m payments.sandbox`, a process of its own) and an active monthly
subscription whose period has ended ({o.setup_seconds:.0f}s to create). {options.workers} Celery worker
processes (`--pool {options.pool} --concurrency {options.concurrency}` each:
{options.workers * options.concurrency} renewals at once) on Redis, under `bench.renewals_settings`
(production-like). For each latency the sandbox delays every API request by that much,
`enqueue_due_renewals` runs once, and the clock stops when no subscription is due any more; the
billing clock then moves one period on for the next latency. Outgoing rate limit
`STRIPE_RATE_LIMIT_PER_SECOND={rate}`, shared by the workers through Redis.

**Baseline: the configured rate, {f"{rate} requests/s" if rate else "none"}, is the ceiling.** A renewal is one
Stripe request (an off-session PaymentIntent), so renewals/s cannot pass it.

{figures}

- *Stripe requests*: those the sandbox received ({failed} failed), timed on arrival. *Busiest 1-s
  window*: the most that arrived in any sliding window [t, t + 1 s), where a steady {rate or "-"}/s
  puts {rate + 1 if rate else "-"} (one request at each end); *bucket needed*: the smallest token bucket refilled at {rate or "-"}/s that would have let every
  request in (1 = never ahead of the pace).{log_note}
- Workers retried {retries} renewal tasks (a temporary error or a token more than 10 s away) and
  logged {sum(run.worker_errors for run in o.runs)} errors.
- Renewals' commits also nudge the notice and event dispatchers (at most one nudge a second
  per process, core/queueing.py): {notifications:,} tasks in all, {notifications / max(renewed, 1):.2f} per renewal. They go
  to a queue of their own that these workers leave alone, so the figures are those of renewing;
  sending the emails and events is other workers' work.
- *PG transactions per renewal*: PostgreSQL's own count over the run (`pg_stat_database`), less
  the benchmark's. Workers keep their database connections from one task to the next
  (`CELERY_DB_REUSE_MAX`, config/celery.py, with no `SELECT 1` before each task), so a renewal
  is its own one transaction; a worker thread opens a new connection (two more: the session's
  start and Django's `SET TIME ZONE`) only once its connection is older than `CONN_MAX_AGE`
  ({_conn_max_age()}).
- {_cpu_lines(o)}

{query_text}

**What the numbers mean.** {_pace_text(options, o)}
"""


def _engine_ms(o: "Outcome") -> float:
    """Return the median time of one renewal with no provider latency, in this process."""
    return o.queries[0].median_ms if o.queries else 0.0


def _conn_max_age() -> str:
    from django.conf import settings

    age = settings.DATABASES["default"].get("CONN_MAX_AGE")
    return "never" if age is None else f"{age} s here"


def _cpu_lines(o: "Outcome") -> str:
    lines = [f"At {run.latency_ms} ms: {_cpu_text(run)}." for run in o.runs]
    if o.queries:
        lines.append(
            f"One renewal with no provider latency, in the benchmark's process: {o.queries[0].median_ms:.1f} ms "
            f"(median), {o.queries[0].median_cpu_ms:.1f} ms of it Python's CPU."
        )
    return "\n  ".join(lines)


def _batch_size() -> int:
    from django.conf import settings

    return int(settings.BILLING_RENEWAL_BATCH_SIZE)
