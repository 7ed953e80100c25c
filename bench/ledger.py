"""Benchmark the ledger: its cost per renewal, the recognition job, the self-check, the trial balance.

    .venv/bin/python -m bench.ledger --periods 100000 --postings 2000000 --rounds 7 --renewals 30

Builds the `billing_bench_ledger` database: about N paid periods (bench/admin_dataset.py's
payments) with their books written in SQL (a capture entry, a refund entry where refunded and
a recognition plan each). Then, in this process: renewals against the in-memory provider in
alternating rounds with the ledger's listeners connected and disconnected (the ratio of their
time per renewal in each round, and its median; the queries of one renewal each way); the
daily recognition job over every plan, twice (the second run posts nothing); `ledger_check`
over the whole books; the backfill of the renewals made without the ledger; and, once filler
entries bring the journal to P postings, the trial balance, revenue by month, the deferred
revenue schedule and `ledger_check` again. Prints the figures, writes them to
docs/benchmarks.md and drops the database. `--periods 1000000 --postings 10000000` is the
issue's full size (about half an hour).
"""

import argparse
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import django

from bench.options import positive_int

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_KEY = "bench/ledger"
DOCS_HEADING = "## Ledger (`bench/ledger`)"
READ_TARGET_MS = 500


@dataclass(frozen=True)
class Options:
    periods: int
    postings: int
    rounds: int
    renewals: int
    repeats: int
    docs_path: Path | None

    def command(self) -> str:
        return (
            f".venv/bin/python -m bench.ledger --periods {self.periods} --postings {self.postings} "
            f"--rounds {self.rounds} --renewals {self.renewals}"
        )


@dataclass
class Timed:
    """One measured operation: what it did and how long it took (median of its repeats, ms)."""

    name: str
    ms: float
    note: str = ""


@dataclass
class Outcome:
    started_at: datetime
    load_average: float
    postgres_version: str = ""
    build_seconds: float = 0.0
    plans: int = 0
    # Renewals: per round (ms per renewal with the ledger, without), and queries of one each way.
    rounds: list[tuple[float, float]] = field(default_factory=list)
    queries: tuple[int, int] = (0, 0)
    jobs: list[Timed] = field(default_factory=list)
    reads: list[Timed] = field(default_factory=list)
    postings: int = 0
    reads_load_average: float = 0.0
    clean: bool = True

    @property
    def ratios(self) -> list[float]:
        return [with_ledger / without for with_ledger, without in self.rounds]


def parse_options(argv: list[str] | None = None) -> Options:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--periods", type=positive_int, default=100_000, help="paid periods, about (N)")
    parser.add_argument(
        "--postings", type=positive_int, default=2_000_000, help="postings the reports read (P)"
    )
    parser.add_argument("--rounds", type=positive_int, default=7, help="renewal rounds, each way (default 7)")
    parser.add_argument("--renewals", type=positive_int, default=30, help="renewals per round and way")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed runs of each report")
    parser.add_argument("--docs", type=Path, default=DOCS_PATH, help="Markdown file to write the figures to")
    parser.add_argument("--no-docs", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    return Options(
        periods=args.periods,
        postings=args.postings,
        rounds=args.rounds,
        renewals=args.renewals,
        repeats=args.repeats,
        docs_path=None if args.no_docs else args.docs,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    scratch = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.ledger_settings"
    os.environ["BILLING_CLOCK_FILE"] = str(scratch / "billing-clock.json")
    django.setup()
    from bench.database import database_drop

    try:
        outcome = run(options)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        database_drop()
        print("Dropped the billing_bench_ledger database.")
        (scratch / "billing-clock.json").unlink(missing_ok=True)
        scratch.rmdir()
    block = docs_block(options, outcome)
    if options.docs_path is not None:
        from bench.report import docs_write_section

        docs_write_section(path=options.docs_path, key=DOCS_KEY, heading=DOCS_HEADING, generated=block)
        print(f"Wrote the figures to {options.docs_path}.")
    else:
        print(f"\n{DOCS_HEADING}\n\n{block.strip()}\n")
    return 0 if outcome.clean else 1


def _timed(name: str, action: Callable[[], Any], repeats: int = 1) -> tuple[Timed, Any]:
    """Run `action` `repeats` times; return its median time and its last result."""
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        timings.append((time.perf_counter() - started) * 1000)
    return Timed(name, statistics.median(timings)), result


def run(options: Options) -> Outcome:
    from bench.admin_dataset import dataset_build
    from bench.database import database_create, database_migrate, database_vacuum, postgres_version
    from bench.ledger_dataset import books_build

    outcome = Outcome(started_at=datetime.now(UTC), load_average=os.getloadavg()[0])
    print(
        f"Machine: {os.cpu_count()} cores, load average {outcome.load_average:.2f} (shared with other work)."
    )
    started = time.monotonic()
    database_create()
    database_migrate()
    outcome.postgres_version = postgres_version()
    dataset_build(subscriptions=max(options.periods // 4, 1), payments=options.periods)
    outcome.plans = books_build()
    database_vacuum()
    outcome.build_seconds = time.monotonic() - started
    print(f"Built {outcome.plans:,} paid periods with their books in {outcome.build_seconds:.0f}s.")
    _recognition(outcome)
    _check(outcome, "ledger_check")
    _renewals(options, outcome)
    _backfill(outcome)
    _reads(options, outcome)
    return outcome


def _recognition(outcome: Outcome) -> None:
    from core.days import utc_yesterday
    from ledger.services.recognition import revenue_recognize

    day = utc_yesterday()
    for name in ("recognition job, first run", "recognition job, same day again"):
        timed, result = _timed(name, lambda: revenue_recognize(day=day))
        rate = result.plans / (timed.ms / 1000) if timed.ms else 0
        timed.note = f"{result.plans:,} plans, {result.entries:,} entries, {rate:,.0f} plans/s"
        outcome.jobs.append(timed)
        print(f"{name}: {timed.ms / 1000:.1f}s ({timed.note}).")


def _check(outcome: Outcome, name: str) -> None:
    from ledger.services.checks import ledger_check

    timed, result = _timed(name, ledger_check)
    timed.note = f"{result.entries:,} entries, " + (
        "clean" if result.clean else f"{result.mismatch_count} mismatches"
    )
    outcome.clean = outcome.clean and result.clean
    outcome.jobs.append(timed)
    print(f"{name}: {timed.ms / 1000:.1f}s ({timed.note}).")


def _renewals(options: Options, outcome: Outcome) -> None:
    """Renew in alternating rounds with the ledger's listeners connected and disconnected."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.ledger_dataset import subscriptions_paid
    from core import clock
    from ledger.listeners import not_listening
    from payments.services.renewals import RenewalOutcome, renewal_run
    from tariffs.models import Tariff

    per_way = options.rounds * options.renewals + 1  # one more each way: the query count
    due = iter(subscriptions_paid(count=2 * per_way, tariff=Tariff.objects.get(slug="monthly")))
    clock.advance(timedelta(days=32))

    def renew(count: int, ledger: bool) -> float:
        started = time.perf_counter()
        with nullcontext() if ledger else not_listening():
            for _ in range(count):
                assert renewal_run(subscription_id=next(due).pk) == RenewalOutcome.RENEWED
        return (time.perf_counter() - started) * 1000 / count

    counts = []
    for ledger in (True, False):
        with CaptureQueriesContext(connection) as captured:
            renew(1, ledger)
        counts.append(len(captured.captured_queries))
    outcome.queries = (counts[0], counts[1])
    for number in range(options.rounds):
        # Which way goes first alternates, so a drift of the machine weighs on both alike.
        ways = (True, False) if number % 2 == 0 else (False, True)
        timings = {ledger: renew(options.renewals, ledger) for ledger in ways}
        outcome.rounds.append((timings[True], timings[False]))
    print(
        f"Renewals: {statistics.median(t for t, _ in outcome.rounds):.1f} ms with the ledger, "
        f"{statistics.median(t for _, t in outcome.rounds):.1f} ms without; median ratio "
        f"{statistics.median(outcome.ratios):.2f}; queries {outcome.queries[0]} vs {outcome.queries[1]}."
    )


def _backfill(outcome: Outcome) -> None:
    from ledger.services.backfill import ledger_backfill

    timed, result = _timed("backfill", ledger_backfill)
    timed.note = f"{result.examined:,} paid payments examined, {result.captures:,} captures posted"
    outcome.jobs.append(timed)
    print(f"backfill: {timed.ms / 1000:.1f}s ({timed.note}).")


def _reads(options: Options, outcome: Outcome) -> None:
    from bench.database import database_vacuum
    from bench.ledger_dataset import filler_add
    from core import clock
    from ledger.models import DayTotal, Posting
    from ledger.selectors import deferred_revenue_schedule, revenue_by_month, trial_balance
    from ledger.services.totals import day_totals_compact

    started = time.monotonic()
    added = filler_add(postings=options.postings)
    database_vacuum()
    outcome.postings = Posting.objects.count()
    print(
        f"Added {added:,} filler postings in {time.monotonic() - started:.0f}s: {outcome.postings:,} in all."
    )
    timed, merged = _timed("merging the day totals", day_totals_compact)
    timed.note = f"{merged.removed:,} rows into {merged.merged:,}; {DayTotal.objects.count():,} rows in all"
    outcome.jobs.append(timed)
    print(f"merging the day totals: {timed.ms / 1000:.1f}s ({timed.note}).")
    now = clock.now()
    today = now.date()
    outcome.reads_load_average = os.getloadavg()[0]
    reads: list[tuple[str, Callable[[], Any]]] = [
        ("trial balance now", lambda: trial_balance(at=now)),
        ("trial balance a year ago", lambda: trial_balance(at=now - timedelta(days=365))),
        (
            "revenue by month, 12 months",
            lambda: revenue_by_month(date_from=today - timedelta(days=365), date_to=today),
        ),
        ("deferred revenue schedule, 12 months", lambda: deferred_revenue_schedule(today=today, months=12)),
    ]
    for name, read in reads:
        read()  # warm the cache: the figure is a page opened again, not a cold disk
        timed, _ = _timed(name, read, repeats=options.repeats)
        outcome.reads.append(timed)
        print(f"{name}: {timed.ms:.0f} ms.")
    _check(outcome, f"ledger_check at {outcome.postings:,} postings")


def docs_block(options: Options, outcome: Outcome) -> str:
    """Return the Markdown of the run's figures and how to read them."""
    from bench.report import markdown_paragraph, markdown_table

    with_ledger = [t for t, _ in outcome.rounds]
    without = [t for _, t in outcome.rounds]
    renewals = markdown_table(
        ["renewal (in-memory provider)", "ms per renewal, median of rounds", "queries"],
        [
            ["without the ledger", f"{statistics.median(without):.1f}", str(outcome.queries[1])],
            ["with the ledger", f"{statistics.median(with_ledger):.1f}", str(outcome.queries[0])],
            [
                "**ratio** (median of per-round ratios)",
                f"**{statistics.median(outcome.ratios):.2f}** (rounds: "
                + ", ".join(f"{ratio:.2f}" for ratio in outcome.ratios)
                + ")",
                f"+{outcome.queries[0] - outcome.queries[1]}",
            ],
        ],
    )
    jobs = markdown_table(
        ["job", "seconds", "what it did"],
        [[job.name, f"{job.ms / 1000:.1f}", job.note] for job in outcome.jobs],
    )
    reads = markdown_table(
        [f"report (load average {outcome.reads_load_average:.2f} when timed)", "ms (median)"],
        [[read.name, f"{read.ms:.0f}"] for read in outcome.reads],
    )
    slow = [read.name for read in outcome.reads if read.ms > READ_TARGET_MS]
    verdict = (
        f"**Every report under {READ_TARGET_MS} ms at {outcome.postings:,} postings: met.**"
        if not slow
        else f"**Over {READ_TARGET_MS} ms at {outcome.postings:,} postings: " + ", ".join(slow) + ".**"
    )
    parts = [
        markdown_paragraph(
            f"_Generated by `bench/ledger.py` on {outcome.started_at:%Y-%m-%d %H:%M} UTC; rerun it to "
            "refresh this block. Notes written by hand follow it._"
        ),
        f"```\n{options.command()}\n```",
        markdown_paragraph(
            f"**Machine:** {os.cpu_count()} CPU cores ({platform.machine()}), shared with other work "
            f"(load average {outcome.load_average:.2f} at the start). Python {platform.python_version()}, "
            f"PostgreSQL {outcome.postgres_version}."
        ),
        markdown_paragraph(
            f"**Data:** {outcome.plans:,} paid periods (bench/admin_dataset.py's payments, about 4% "
            "refunded) with a capture entry, a refund entry where refunded and a recognition plan each, "
            f"written in SQL with the balance trigger off for the bulk load; built in "
            f"{outcome.build_seconds:.0f}s, then VACUUM ANALYZE. The reports then read the books at "
            f"{outcome.postings:,} postings (filler fee entries spread over three years), through "
            "the day totals the database keeps of them (ledger.models.DayTotal)."
        ),
        markdown_paragraph(
            f"**How:** in the benchmark's process (`bench.ledger_settings`). Renewals charge the "
            f"in-memory provider, so a renewal's time is this service's own SQL and Python; "
            f"{options.rounds} rounds of {options.renewals} renewals each way, the ledger's listeners "
            "connected or disconnected, the first way alternating; the ratio is taken per round, then "
            "its median. Queries are those of one renewal each way. Reports: one untimed run, then "
            f"the median of {options.repeats}. Compare ratios between runs, not absolute figures."
        ),
        renewals,
        jobs,
        reads,
        verdict,
        "**The books were clean after every step.**"
        if outcome.clean
        else "**`ledger_check` found mismatches: see the jobs above.**",
    ]
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.exit(main())
