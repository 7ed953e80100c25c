"""What bench/renewals prints and writes to docs/benchmarks.md: its figures, and what they mean."""

import os
import platform
from typing import TYPE_CHECKING

from bench.report import markdown_table

if TYPE_CHECKING:
    from bench.renewals import Options, Outcome


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
        print(f"  {run.notification_tasks:,} notification tasks queued (left to their own workers).")
    for query in o.queries:
        print(f"Queries per renewal, {query.table_size:,} subscriptions in the table: {query.text()}")
    print(f"Queries per renewal constant in N: {'yes' if o.queries_constant else 'NO'}")


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
    for run in missed:
        lines.append(
            f"At {run.latency_ms} ms the mean rate stayed at {run.requests_per_second:.1f}/s, "
            f"{run.requests_per_second / rate:.2f} of the limit: the workers, not the limiter, set the pace."
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
- Workers retried {retries} renewal tasks (a temporary error or a token more than 10 s away).
- Each renewal's commit also queued notification tasks (the notice and event dispatchers):
  {notifications:,} in all, {notifications / max(renewed, 1):.1f} per renewal. They go to a queue of their own that
  these workers leave alone, so the figures are those of renewing; sending the emails and events
  is other workers' work.
- *PG transactions per renewal*: PostgreSQL's own count over the run (`pg_stat_database`), less
  the benchmark's: the renewal's own transaction, plus two for setting up a new connection.
  Celery's Django fixup closes the task's database connections before and after every task
  (`CELERY_DB_REUSE_MAX` is not set), so each renewal connects anew whatever `CONN_MAX_AGE` says.

{query_text}

**What the numbers mean.** {_pace_text(options, o)}
"""


def _batch_size() -> int:
    from django.conf import settings

    return int(settings.BILLING_RENEWAL_BATCH_SIZE)
