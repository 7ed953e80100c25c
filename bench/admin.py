"""Benchmark the back office: admin changelists and the accounting dashboard with 1M payments.

    .venv/bin/python -m bench.admin --subscriptions 200000 --payments 1000000 --keep

Builds the `billing_bench_admin` database (accounts, subscriptions, payments, refunds, made
in SQL with generate_series), logs in as an accountant (Accounting group) and requests each
page in turns through Django's test client: the admin index (the baseline), the payments,
subscriptions and refunds changelists plain, filtered and searched, and the dashboard. Prints
p50/p95 per page, its time over the baseline's in each round and the median of those ratios
(bench/stats.py), and the SQL queries one request makes, then writes them to docs/benchmarks.md. With --keep the database stays for the next run,
which reuses it when it holds the same dataset (and applies any new migrations first).
"""

import argparse
import os
import platform
import re
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import django

from bench.options import positive_int
from bench.stats import median_ratio, ratios_text, round_ratios

if TYPE_CHECKING:
    from django.test import Client

    from bench.admin_dataset import Sizes

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_KEY = "bench/admin"
DOCS_HEADING = "## Back office with a million payments (`bench/admin`)"
TARGET_MS = 500
PAYMENTS = "/admin/payments/payment/"
SUBSCRIPTIONS = "/admin/billing/subscription/"
REFUNDS = "/admin/payments/refund/"
DASHBOARD = "/admin/dashboard/"
BASELINE = "admin index (baseline)"


@dataclass(frozen=True)
class Options:
    subscriptions: int
    payments: int
    rounds: int
    warmup: int
    keep: bool
    rebuild: bool
    docs_path: Path | None

    def command(self) -> str:
        return (
            f".venv/bin/python -m bench.admin --subscriptions {self.subscriptions} "
            f"--payments {self.payments} --rounds {self.rounds}" + (" --keep" if self.keep else "")
        )


@dataclass(frozen=True)
class Page:
    name: str
    url: str


@dataclass
class PageResult:
    page: Page
    timings_ms: list[float] = field(default_factory=list)
    queries: int = 0
    status_code: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.timings_ms)

    @property
    def p95(self) -> float:
        if len(self.timings_ms) < 2:
            return self.timings_ms[0]
        return statistics.quantiles(self.timings_ms, n=20, method="inclusive")[-1]

    def ratios_to(self, baseline: "PageResult") -> list[float]:
        """Return this page's time over the baseline's, round by round (the same round's requests)."""
        return round_ratios(targets=self.timings_ms, baselines=baseline.timings_ms)

    def ratio_to(self, baseline: "PageResult") -> float:
        """Return the median of the per-round ratios to the baseline."""
        return median_ratio(self.ratios_to(baseline))


@dataclass
class Outcome:
    started_at: datetime
    load_average: float
    sizes: "Sizes | None" = None
    build_seconds: float | None = None
    postgres_version: str = ""
    results: list[PageResult] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> PageResult:
        return self.results[0]

    def over_target(self) -> list[PageResult]:
        return [result for result in self.results[1:] if result.p50 > TARGET_MS]


def parse_options(argv: list[str] | None = None) -> Options:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.admin", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--subscriptions", type=positive_int, default=200_000, help="subscriptions (and accounts)"
    )
    parser.add_argument("--payments", type=positive_int, default=1_000_000, help="payments in all")
    parser.add_argument(
        "--rounds", type=positive_int, default=15, help="timed requests per page (default 15)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests per page first (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the database, and reuse a kept one")
    parser.add_argument("--rebuild", action="store_true", help="build the dataset even if a kept one fits")
    parser.add_argument("--docs", type=Path, default=DOCS_PATH, help="Markdown file to write the figures to")
    parser.add_argument("--no-docs", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    return Options(
        subscriptions=args.subscriptions,
        payments=args.payments,
        rounds=args.rounds,
        warmup=max(args.warmup, 0),
        keep=args.keep,
        rebuild=args.rebuild,
        docs_path=None if args.no_docs else args.docs,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.admin_settings"
    django.setup()
    from bench.database import database_drop

    try:
        outcome = run(options)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        if not options.keep:
            database_drop()
            print("Dropped the billing_bench_admin database.")
    block = docs_block(options, outcome)
    if options.docs_path is not None:
        from bench.report import docs_write_section

        docs_write_section(path=options.docs_path, key=DOCS_KEY, heading=DOCS_HEADING, generated=block)
        print(f"Wrote the figures to {options.docs_path}.")
    return 0 if outcome.results and not outcome.over_target() else 1


def dataset_ready(options: Options) -> "Outcome":
    """Return a new outcome, after building the dataset or finding a kept one that fits."""
    from bench.admin_dataset import dataset_build, dataset_sizes
    from bench.database import (
        database_create,
        database_exists,
        database_migrate,
        database_vacuum,
        postgres_version,
    )

    outcome = Outcome(started_at=datetime.now(UTC), load_average=os.getloadavg()[0])
    if options.keep and not options.rebuild and database_exists():
        database_migrate()
        sizes = dataset_sizes()
        if sizes.payments == options.payments and sizes.subscriptions == options.subscriptions:
            print(
                f"Reusing the kept database: {sizes.payments:,} payments, {sizes.subscriptions:,} subscriptions."
            )
            database_vacuum()
            outcome.sizes, outcome.postgres_version = sizes, postgres_version()
            return outcome
        print("The kept database holds another dataset: building it again.")
    started = time.monotonic()
    database_create()
    database_migrate()
    outcome.sizes = dataset_build(subscriptions=options.subscriptions, payments=options.payments)
    database_vacuum()
    outcome.build_seconds = time.monotonic() - started
    outcome.postgres_version = postgres_version()
    print(
        f"Built {outcome.sizes.payments:,} payments, {outcome.sizes.subscriptions:,} subscriptions and "
        f"{outcome.sizes.refunds:,} refunds in {outcome.build_seconds:.0f}s."
    )
    return outcome


_FILTER_LINK = re.compile(r'href="\?([^"#]+)"')


def filter_link(client: "Client", url: str, parameter: str, *, choice: int = 0) -> str | None:
    """Return the query string of a filter link the changelist offers whose parameters name `parameter`.

    Read from the page itself, so the benchmark follows whatever filters the admin has.
    """
    html = client.get(url).content.decode()
    links = [unescape(query) for query in _FILTER_LINK.findall(html)]
    matching = [query for query in links if any(part.startswith(parameter) for part in query.split("&"))]
    return matching[choice] if len(matching) > choice else None


def pages(client: "Client", outcome: Outcome) -> list[Page]:
    """Return the pages to time: the baseline first, then the changelists and the dashboard."""
    from accounts.models import BillingAccount

    user_id = BillingAccount.objects.order_by("pk").values_list("user_id", flat=True)[
        BillingAccount.objects.count() // 2
    ]
    wanted = [
        Page(BASELINE, "/admin/"),
        Page("payments", PAYMENTS),
        Page("payments · status", f"{PAYMENTS}?status__exact=failed"),
        Page("payments · created: past 7 days", _link(client, PAYMENTS, "created_at__gte", 1, outcome)),
        Page("payments · paid: past 7 days", _link(client, PAYMENTS, "paid_at__gte", 1, outcome)),
        Page("payments · currency", f"{PAYMENTS}?currency=EUR"),
        Page("payments · tariff", _link(client, PAYMENTS, "tariff=", 0, outcome)),
        Page("payments · search cinema user id", f"{PAYMENTS}?q={user_id}"),
        Page("subscriptions", SUBSCRIPTIONS),
        Page("subscriptions · status", f"{SUBSCRIPTIONS}?status__exact=past_due"),
        Page("subscriptions · tariff", _link(client, SUBSCRIPTIONS, "tariff", 0, outcome)),
        Page("subscriptions · autopay", f"{SUBSCRIPTIONS}?autopay__exact=0"),
        Page("subscriptions · currency", f"{SUBSCRIPTIONS}?currency=EUR"),
        Page("refunds", REFUNDS),
        Page("refunds · tariff", _link(client, REFUNDS, "tariff=", 0, outcome)),
        Page("dashboard", DASHBOARD),
    ]
    return [page for page in wanted if page.url]


def _link(client: "Client", url: str, parameter: str, choice: int, outcome: Outcome) -> str:
    query = filter_link(client, url, parameter, choice=choice)
    if query is None:
        outcome.missing.append(f"{url} has no filter on {parameter}")
        return ""
    return f"{url}?{query}"


def measure(client: "Client", pages: list[Page], *, rounds: int, warmup: int) -> list[PageResult]:
    """Time every page `rounds` times, the pages taken in turns so that load changes hit all alike."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = [PageResult(page) for page in pages]
    for result in results:
        for _ in range(warmup):
            client.get(result.page.url)
        with CaptureQueriesContext(connection) as captured:
            result.status_code = client.get(result.page.url).status_code
        result.queries = len(captured.captured_queries)
    for _ in range(rounds):
        for result in results:
            started = time.perf_counter()
            response = client.get(result.page.url)
            result.timings_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{result.page.url} answered {response.status_code}")
    return results


def run(options: Options) -> Outcome:
    """Build or reuse the dataset, then time the pages as an accountant."""
    from django.test import Client

    from bench.admin_dataset import staff_create

    cores = os.cpu_count() or 1
    outcome = dataset_ready(options)
    print(f"Machine: {cores} cores, load average {outcome.load_average:.2f} (shared with other work).")
    client = Client()
    client.force_login(staff_create())
    page_list = pages(client, outcome)
    for missing in outcome.missing:
        print(f"  Skipped: {missing}.")
    outcome.results = measure(client, page_list, rounds=options.rounds, warmup=options.warmup)
    print("\nTime over the baseline's, round by round:")
    for result in outcome.results[1:]:
        print(f"  {result.page.name}: {ratios_text(result.ratios_to(outcome.baseline))}")
    print()
    print(results_table(outcome))
    return outcome


def results_table(outcome: Outcome) -> str:
    """Return the per-page figures as a Markdown table."""
    from bench.report import markdown_table

    baseline = outcome.baseline
    rows = [
        [
            f"`{result.page.url}`" if index == 0 else f"{result.page.name}",
            f"{result.p50:.0f}",
            f"{result.p95:.0f}",
            f"{result.ratio_to(baseline):.1f}",
            str(result.queries),
        ]
        for index, result in enumerate(outcome.results)
    ]
    rows[0][0] = f"{BASELINE}: `/admin/`"
    return markdown_table(["page", "p50 ms", "p95 ms", "/ baseline (median of rounds)", "queries"], rows)


def docs_block(options: Options, outcome: Outcome) -> str:
    """Return the Markdown of the run's figures and how to read them."""
    from bench.report import markdown_paragraph

    sizes = outcome.sizes
    data = (
        f"{sizes.payments:,} payments, {sizes.subscriptions:,} subscriptions (one billing account each), "
        f"{sizes.refunds:,} refunds"
        if sizes
        else "?"
    )
    build = (
        f"built in {outcome.build_seconds:.0f}s"
        if outcome.build_seconds is not None
        else "reused from a kept run"
    )
    over = outcome.over_target()
    verdict = (
        f"**Every page's p50 under {TARGET_MS} ms: met.**"
        if not over
        else f"**Over {TARGET_MS} ms at p50: " + ", ".join(result.page.name for result in over) + ".**"
    )
    urls = "\n".join(f"- {result.page.name}: `{result.page.url}`" for result in outcome.results)
    parts = [
        markdown_paragraph(
            f"_Generated by `bench/admin.py` on {outcome.started_at:%Y-%m-%d %H:%M} UTC; rerun it to "
            "refresh this block. Notes written by hand follow it._"
        ),
        f"```\n{options.command()}\n```",
        markdown_paragraph(
            f"**Machine:** {os.cpu_count()} CPU cores ({platform.machine()}), shared with other work "
            f"(load average {outcome.load_average:.2f} at the start). Python {platform.python_version()}, "
            f"PostgreSQL {outcome.postgres_version}."
        ),
        markdown_paragraph(
            f"**Data:** {data}; {build}, then VACUUM ANALYZE. Statuses of subscriptions: 60% active, 5% "
            "trialing, 3% past due, 2% pending, 20% expired, 10% canceled; six tariffs in RUB and EUR, "
            "monthly and yearly. About 2% of payments refunded in full, 2% in part, 2% paid after a decline."
        ),
        markdown_paragraph(
            f"**How:** logged in as a member of the Accounting group, through Django's test client in "
            f"the benchmark's process (`bench.admin_settings`: DEBUG off, a persistent connection), so "
            f"a figure is the page's own cost, SQL and template rendering, without HTTP. {options.warmup} "
            f"untimed requests per page, then {options.rounds} rounds taking every page in turn. The "
            "baseline, the admin index, is measured in the same rounds; a page's ratio is its time "
            "over the baseline's in each round, then the median of those. Compare ratios between runs."
        ),
        results_table(outcome),
        verdict,
        "Pages:\n\n" + urls,
    ]
    if outcome.missing:
        parts.append("Not measured: " + "; ".join(outcome.missing) + ".")
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.exit(main())
