"""Benchmark the viewer access endpoint against the framework's floor, in the same run.

    .venv/bin/python -m bench.access --accounts 100000 --duration 10 --connections 32 --rounds 3

Creates and fills the `billing_bench` database, serves it with gunicorn on 127.0.0.1, loads
`bench/floor/` and `api/v1/access/` in turns with wrk, prints the figures and the ratio of
their requests per second in each round, and the median of those ratios as the headline
(bench/stats.py), writes them to docs/benchmarks.md and drops the database again. The
machine is shared and noisy: compare ratios between runs, not absolute figures.
"""

import argparse
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import django

from bench.options import gunicorn_arguments_add, positive_int
from bench.stats import median_ratio, ratios_text, round_ratios

if TYPE_CHECKING:
    from bench.inprocess import CpuCost, RequestCount
    from bench.wrk import WrkResult

TARGET_RATIO = 0.80
FLOOR_PATH = "/bench/floor/"
ACCESS_PATH = "/api/v1/access/"
DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_KEY = "bench/access"
DOCS_HEADING = "## Access endpoint (`bench/access`)"
CPU_REQUESTS = 1000
CPU_REPEATS = 3


@dataclass(frozen=True)
class Options:
    accounts: int
    duration: int
    connections: int
    rounds: int
    threads: int
    warmup: int
    cache_warmup: int
    tokens: int
    worker_class: str
    workers: int
    worker_threads: int
    write_docs: bool

    def command(self) -> str:
        return (
            f".venv/bin/python -m bench.access --accounts {self.accounts} --duration {self.duration} "
            f"--connections {self.connections} --rounds {self.rounds}"
        )


@dataclass
class Outcome:
    """What one run measured, for the summary and the docs."""

    started_at: datetime
    load_average: float
    postgres_version: str = ""
    wrk_version: str = ""
    server: str = ""
    server_note: str = ""
    mix: str = ""
    token_mix: str = ""
    tokens: int = 0
    counts: list["RequestCount"] = field(default_factory=list)
    floor_cpu: "CpuCost | None" = None
    access_cpu: "CpuCost | None" = None
    access_cpu_uncached: "CpuCost | None" = None
    cache_enabled: bool = False
    cpu_hit_rate: float = float("nan")
    cache_hits: int = 0
    cache_misses: int = 0
    floor: list["WrkResult"] = field(default_factory=list)
    access: list["WrkResult"] = field(default_factory=list)
    transactions_per_request: float = float("nan")

    def median(self, results: list["WrkResult"], attribute: str) -> float:
        return statistics.median(getattr(result, attribute) for result in results)

    @property
    def floor_rps(self) -> float:
        return self.median(self.floor, "requests_per_second")

    @property
    def access_rps(self) -> float:
        return self.median(self.access, "requests_per_second")

    @property
    def ratios(self) -> list[float]:
        """Return each round's access/floor requests per second."""
        return round_ratios(
            targets=[result.requests_per_second for result in self.access],
            baselines=[result.requests_per_second for result in self.floor],
        )

    @property
    def ratio(self) -> float:
        """Return the headline: the median of the per-round ratios, not the ratio of the medians."""
        return median_ratio(self.ratios)

    @property
    def errors(self) -> int:
        return sum(result.errors for result in [*self.floor, *self.access])

    @property
    def at_most_one_query(self) -> bool:
        steady = [count for count in self.counts if count.steady]
        return bool(steady) and all(count.queries <= 1 and count.status_code == 200 for count in steady)

    @property
    def hit_rate(self) -> float:
        """Share of the measured access requests the workers' caches answered."""
        total = self.cache_hits + self.cache_misses
        return self.cache_hits / total if total else float("nan")


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.access", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=positive_int, default=100_000, help="billing accounts to load")
    parser.add_argument("--duration", type=positive_int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=positive_int, default=32, help="wrk connections")
    parser.add_argument("--rounds", type=positive_int, default=3, help="floor + access runs to alternate")
    parser.add_argument("--threads", type=positive_int, default=1, help="wrk threads (default: 1)")
    parser.add_argument("--warmup", type=positive_int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument(
        "--cache-warmup",
        type=positive_int,
        default=10,
        help="seconds of access warm-up with the access cache on, so each worker has met the viewers",
    )
    parser.add_argument("--tokens", type=positive_int, default=2000, help="viewer tokens to rotate")
    gunicorn_arguments_add(parser)
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return Options(
        accounts=args.accounts,
        duration=args.duration,
        connections=args.connections,
        rounds=args.rounds,
        threads=args.threads,
        warmup=args.warmup,
        cache_warmup=args.cache_warmup,
        tokens=args.tokens,
        worker_class=args.worker_class,
        workers=args.workers,
        worker_threads=args.worker_threads,
        write_docs=not args.no_docs,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same way out as Ctrl-C: through every `finally` that cleans up.
    raise KeyboardInterrupt


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _version(command: list[str]) -> str:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    lines = (completed.stdout or completed.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def _cpu_text(cost: "CpuCost | None") -> str:
    if cost is None:
        return "?"
    if cost.postgres_us is None:
        return f"{cost.python_us:.0f} µs (Python; PostgreSQL not measurable here)"
    return (
        f"{cost.python_us + cost.postgres_us:.0f} µs "
        f"({cost.python_us:.0f} Python + {cost.postgres_us:.0f} PostgreSQL)"
    )


def _cpu_total(cost: "CpuCost | None") -> float:
    if cost is None:
        return float("nan")
    return cost.python_us + (cost.postgres_us or 0.0)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    django.setup()
    signal.signal(signal.SIGTERM, _interrupt)

    from bench.database import database_drop

    try:
        outcome = _run(options)
    except KeyboardInterrupt:
        print("\nInterrupted: cleaning up.", file=sys.stderr)
        return 130
    finally:
        database_drop()
        print("Dropped the billing_bench database.")
    if options.write_docs:
        from bench.report import docs_write_section

        docs_write_section(
            path=DOCS_PATH, key=DOCS_KEY, heading=DOCS_HEADING, generated=_docs_block(options, outcome)
        )
        print(f"Wrote the figures to {DOCS_PATH}.")
    # A regression of the one-query rule fails the run; a missed target is a figure to read.
    return 0 if outcome.at_most_one_query else 1


def _run(options: Options) -> Outcome:
    # Imported here: these need django.setup(), which main() runs first.
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, connections
    from django.test.utils import override_settings

    from accounts.services import account_get_or_create
    from accounts.tokens import issue_token
    from bench.database import database_recreate, database_transaction_count
    from bench.dataset import KIND_WEIGHTS, dataset_load
    from bench.inprocess import CpuCost, cpu_per_request, request_count
    from bench.server import GunicornConfig, gunicorn_running
    from bench.wrk import WrkResult, wrk_ensure_installed, wrk_run, wrk_write_script
    from billing.access_cache import access_cache_stop, access_cache_wait_until_usable

    wrk = wrk_ensure_installed()
    cores = os.cpu_count() or 1
    outcome = Outcome(started_at=datetime.now(UTC), load_average=os.getloadavg()[0])
    outcome.wrk_version = _version([wrk, "--version"]).split(" Copyright")[0].strip()
    gunicorn = GunicornConfig(
        worker_class=options.worker_class, workers=options.workers, threads=options.worker_threads
    )
    outcome.server = gunicorn.describe()
    print(f"Machine: {cores} cores, load average {outcome.load_average:.2f} (shared with other work).")
    if (gunicorn.worker_class, gunicorn.workers, gunicorn.threads) == ("gthread", cores, 4):
        outcome.server_note = (
            "one process per core, as wrk and PostgreSQL need the same cores and more processes"
            " would only add switching; threads overlap the waits on PostgreSQL and keep"
            " connections alive, as production's config/gunicorn.conf.py does"
        )
    else:
        outcome.server_note = "chosen on the command line"
    print(f"Server: {outcome.server}: {outcome.server_note}.")
    print(
        f"Load: wrk, {options.threads} thread(s), {options.connections} connections, "
        f"{options.duration}s per run, {options.rounds} round(s) of floor then access."
    )

    step = time.monotonic()
    database_recreate()
    dataset = dataset_load(accounts=options.accounts)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        outcome.postgres_version = cursor.fetchone()[0].split()[0]
    print(f"Loaded {options.accounts:,} accounts with subscriptions in {time.monotonic() - step:.1f}s.")
    outcome.mix = ", ".join(
        f"{kind} {dataset.kinds[kind] / options.accounts:.1%}" for kind in KIND_WEIGHTS if dataset.kinds[kind]
    )
    print(f"Mix: {outcome.mix}.")

    rng = random.Random(7)
    viewers = rng.sample(dataset.viewers, min(options.tokens, len(dataset.viewers)))
    total_seconds = options.duration * options.rounds * 2 + options.warmup * 2
    tokens = [
        issue_token(user_id=viewer.user_id, email=viewer.email, ttl_seconds=max(3600, 4 * total_seconds))
        for viewer in viewers
    ]
    outcome.tokens = len(tokens)
    token_kinds = Counter(viewer.kind for viewer in viewers)
    outcome.token_mix = ", ".join(f"{kind} {token_kinds[kind]}" for kind in KIND_WEIGHTS if token_kinds[kind])

    # In-process: queries per request, then the CPU a request costs.
    application = WSGIHandler()
    outcome.cache_enabled = bool(settings.BILLING_ACCESS_CACHE)
    # As in a worker that has served a while: its cache's listener is listening.
    cache = access_cache_wait_until_usable()
    by_kind = {viewer.kind: viewer for viewer in reversed(dataset.viewers)}
    account_get_or_create(user_id="bench-never-subscribed", email="never-subscribed@example.com")
    steady_cases = {
        "account with an active subscription": by_kind["active"].user_id,
        "account without a live subscription (expired)": by_kind["expired"].user_id,
        "account that never subscribed": "bench-never-subscribed",
    }
    for case, user_id in steady_cases.items():
        token = issue_token(user_id=user_id)
        outcome.counts.append(request_count(application=application, case=case, token=token))
    if cache is not None:
        with override_settings(BILLING_ACCESS_CACHE=False):
            outcome.counts.append(
                request_count(
                    application=application,
                    case="account with an active subscription, access cache off",
                    token=issue_token(user_id=by_kind["active"].user_id),
                )
            )
    outcome.counts.append(
        request_count(
            application=application,
            case="first request of an unknown viewer (opens the account)",
            token=issue_token(user_id="bench-first-visit", email="first-visit@example.com"),
            steady=False,
        )
    )
    print("Queries per access request (in-process, through the WSGI handler):")
    for count in outcome.counts:
        print(
            f"  {count.case}: {count.queries} quer{'y' if count.queries == 1 else 'ies'}"
            f" + {count.health_checks} connection health check(s); HTTP {count.status_code},"
            f" has_access={count.body.get('has_access')}"
        )
    print(f"  steady state <= 1 query: {'yes' if outcome.at_most_one_query else 'NO'}")
    floor_costs: list[CpuCost] = []
    access_costs: list[CpuCost] = []
    uncached_costs: list[CpuCost] = []
    hits_before = (cache.stats.hits, cache.stats.misses) if cache is not None else (0, 0)
    for _ in range(CPU_REPEATS):
        for path, costs in ((FLOOR_PATH, floor_costs), (ACCESS_PATH, access_costs)):
            costs.append(
                cpu_per_request(application=application, path=path, tokens=tokens, requests=CPU_REQUESTS)
            )
        if cache is not None:
            with override_settings(BILLING_ACCESS_CACHE=False):
                uncached_costs.append(
                    cpu_per_request(
                        application=application, path=ACCESS_PATH, tokens=tokens, requests=CPU_REQUESTS
                    )
                )
    outcome.floor_cpu = min(floor_costs, key=_cpu_total)
    outcome.access_cpu = min(access_costs, key=_cpu_total)
    outcome.access_cpu_uncached = min(uncached_costs, key=_cpu_total) if uncached_costs else None
    if cache is not None:
        hits, misses = cache.stats.hits - hits_before[0], cache.stats.misses - hits_before[1]
        outcome.cpu_hit_rate = hits / (hits + misses) if hits + misses else float("nan")
    print(
        f"CPU per request (in-process, best of {CPU_REPEATS} x {CPU_REQUESTS}): floor "
        f"{_cpu_text(outcome.floor_cpu)}, access {_cpu_text(outcome.access_cpu)}"
        + (
            f" (cache hit rate {outcome.cpu_hit_rate:.1%} over all runs); access with the cache off "
            f"{_cpu_text(outcome.access_cpu_uncached)}."
            if cache is not None
            else " (access cache off)."
        )
    )
    access_cache_stop()
    connections.close_all()

    with tempfile.TemporaryDirectory(prefix="bench-access-") as scratch:
        directory = Path(scratch)
        script = wrk_write_script(directory=directory, tokens=tokens)
        with gunicorn_running(config=gunicorn, log_path=directory / "gunicorn.log") as server:

            def load(path: str, seconds: int) -> WrkResult:
                return wrk_run(
                    wrk=wrk,
                    url=f"{server.base_url}{path}",
                    script=script,
                    connections=options.connections,
                    threads=options.threads,
                    duration=seconds,
                )

            transactions_before = database_transaction_count()
            access_warmup = (
                max(options.warmup, options.cache_warmup) if outcome.cache_enabled else options.warmup
            )
            print(f"Warming up ({options.warmup}s floor, {access_warmup}s access)...")
            load(FLOOR_PATH, options.warmup)
            access_requests = load(ACCESS_PATH, access_warmup).requests
            stats_before = _cache_stats(server.base_url, options.workers)
            header = (
                f"{'round':>5} | {'floor req/s':>11} {'p50 ms':>7} {'p99 ms':>7} | "
                f"{'access req/s':>12} {'p50 ms':>7} {'p99 ms':>7} | {'access/floor':>12}"
            )
            print(header)
            print("-" * len(header))
            for number in range(1, options.rounds + 1):
                floor, access = load(FLOOR_PATH, options.duration), load(ACCESS_PATH, options.duration)
                outcome.floor.append(floor)
                outcome.access.append(access)
                access_requests += access.requests
                print(
                    f"{number:>5} | {floor.requests_per_second:>11.1f} {_ms(floor.p50_ms):>7} "
                    f"{_ms(floor.p99_ms):>7} | {access.requests_per_second:>12.1f} {_ms(access.p50_ms):>7} "
                    f"{_ms(access.p99_ms):>7} | {access.requests_per_second / floor.requests_per_second:>12.2f}",
                    flush=True,
                )
            stats_after = _cache_stats(server.base_url, options.workers)
            for pid, (hits, misses) in stats_after.items():
                hits_then, misses_then = stats_before.get(pid, (0, 0))
                outcome.cache_hits += hits - hits_then
                outcome.cache_misses += misses - misses_then
    # The workers' connections are closed now, so PostgreSQL has counted all they did.
    time.sleep(1)
    transactions = database_transaction_count() - transactions_before
    outcome.transactions_per_request = transactions / access_requests if access_requests else float("nan")

    print("-" * len(header))
    o = outcome
    print(
        f"{'med.':>5} | {o.floor_rps:>11.1f} {_ms(o.median(o.floor, 'p50_ms')):>7} "
        f"{_ms(o.median(o.floor, 'p99_ms')):>7} | {o.access_rps:>12.1f} "
        f"{_ms(o.median(o.access, 'p50_ms')):>7} {_ms(o.median(o.access, 'p99_ms')):>7} | {o.ratio:>12.2f}"
    )
    if o.errors:
        print(f"WARNING: {o.errors} socket errors or non-2xx answers during the runs.")
    print(f"Ratio access/floor, median of the per-round ratios ({ratios_text(o.ratios)}): {o.ratio:.2f}")
    print(f"Target >= {TARGET_RATIO:.2f}: {'met' if o.ratio >= TARGET_RATIO else 'NOT met'}")
    print(f"An access request costs {1 / o.ratio:.1f} times the machine time of a floor request.")
    print(
        "PostgreSQL transactions per access request under load (server-side count): "
        f"{o.transactions_per_request:.2f}"
    )
    print(
        f"Access cache {'on' if o.cache_enabled else 'off'}: hit rate over the measured access runs "
        f"{o.hit_rate:.1%} ({o.cache_hits:,} hits, {o.cache_misses:,} misses, all workers)."
    )
    return outcome


def _cache_stats(base_url: str, workers: int) -> dict[int, tuple[int, int]]:
    """Return each worker's access cache (hits, misses), asking on new connections until all answered."""
    import json
    import urllib.request

    seen: dict[int, tuple[int, int]] = {}
    for _ in range(50 * workers):
        with urllib.request.urlopen(f"{base_url}/bench/access-cache/", timeout=5) as response:
            stats = json.load(response)
        seen[stats["pid"]] = (stats["hits"], stats["misses"])
        if len(seen) >= workers:
            break
    return seen


def _docs_block(options: Options, o: Outcome) -> str:
    """Return the Markdown of the run's figures and what they mean."""
    from django.conf import settings

    from bench.report import markdown_paragraph, markdown_table

    cores = os.cpu_count() or 1
    rows = [
        [
            str(number),
            f"{f.requests_per_second:.0f}",
            _ms(f.p50_ms),
            _ms(f.p99_ms),
            f"{a.requests_per_second:.0f}",
            _ms(a.p50_ms),
            _ms(a.p99_ms),
            f"{a.requests_per_second / f.requests_per_second:.2f}",
        ]
        for number, (f, a) in enumerate(zip(o.floor, o.access, strict=True), start=1)
    ]
    rows.append(
        [
            "**median**",
            f"**{o.floor_rps:.0f}**",
            _ms(o.median(o.floor, "p50_ms")),
            _ms(o.median(o.floor, "p99_ms")),
            f"**{o.access_rps:.0f}**",
            _ms(o.median(o.access, "p50_ms")),
            _ms(o.median(o.access, "p99_ms")),
            f"**{o.ratio:.2f}**",
        ]
    )
    figures = markdown_table(
        [
            "round",
            "floor req/s",
            "floor p50 ms",
            "floor p99 ms",
            "access req/s",
            "access p50 ms",
            "access p99 ms",
            "access/floor",
        ],
        rows,
    )
    queries = markdown_table(
        ["viewer", "Django queries", "health checks (`SELECT 1`)", "answer"],
        [
            [
                count.case if count.steady else f"{count.case}, once per viewer",
                str(count.queries),
                str(count.health_checks),
                f"{count.status_code}, has_access={str(count.body.get('has_access')).lower()}",
            ]
            for count in o.counts
        ],
    )
    met = "met" if o.ratio >= TARGET_RATIO else "NOT met"
    errors = f" ({o.errors} socket errors or non-2xx answers.)" if o.errors else ""
    cpu_ratio = _cpu_total(o.floor_cpu) / _cpu_total(o.access_cpu)
    if o.cache_enabled:
        cache_text = (
            "**Access cache:** `BILLING_ACCESS_CACHE` on, as in production: each worker keeps the rows "
            "it read, PostgreSQL notifies it of every committed change (billing/access_cache.py). "
            f"{options.cache_warmup}s of access warm-up let each worker meet the viewers (a polling "
            f"frontend's steady state); over the measured access runs the workers' caches answered "
            f"{o.cache_hits:,} requests and PostgreSQL {o.cache_misses:,}: **hit rate {o.hit_rate:.1%}**."
        )
        cpu_text = (
            f"**CPU per request**, in-process (best of {CPU_REPEATS} x {CPU_REQUESTS} requests through "
            f"the WSGI handler): floor {_cpu_text(o.floor_cpu)}; access {_cpu_text(o.access_cpu)} "
            f"(cache hit rate {o.cpu_hit_rate:.1%} over all in-process runs); floor/access "
            f"{cpu_ratio:.2f}. The same requests with the cache off: access "
            f"{_cpu_text(o.access_cpu_uncached)}, floor/access "
            f"{_cpu_total(o.floor_cpu) / _cpu_total(o.access_cpu_uncached):.2f}."
        )
    else:
        cache_text = "**Access cache:** `BILLING_ACCESS_CACHE` off: every access request reads PostgreSQL."
        cpu_text = (
            f"**CPU per request**, in-process (best of {CPU_REPEATS} x {CPU_REQUESTS} requests through "
            f"the WSGI handler): floor {_cpu_text(o.floor_cpu)}; access {_cpu_text(o.access_cpu)}; "
            f"floor/access {cpu_ratio:.2f}."
        )
    blocks = [
        f"_Generated by `bench/access.py` on {o.started_at:%Y-%m-%d %H:%M} UTC; rerun it to refresh "
        "this block. Notes written by hand follow it._",
        f"```\n{options.command()}\n```",
        f"**Machine:** {cores} CPU cores ({platform.machine()}), shared by wrk, gunicorn and PostgreSQL, "
        f"and during this run also by other engineers' test runs (load average {o.load_average:.2f} at "
        f"the start). Python {platform.python_version()}, PostgreSQL {o.postgres_version}, "
        f"{o.wrk_version}.",
        f"**Server:** {o.server} ({o.server_note}). `bench.settings`: DEBUG off, persistent database "
        "connections with health checks, as in production. **Load:** wrk, "
        f"{options.threads} thread(s), {options.connections} connections, {options.duration}s per run "
        f"after {options.warmup}s of warm-up per endpoint (access: {options.cache_warmup}s with the cache "
        f"on), floor and access alternated {options.rounds} "
        f"times. Each request carries the `Authorization: Bearer` token of one of {o.tokens:,} random "
        f"viewers ({o.token_mix}).",
        f"**Data:** {options.accounts:,} billing accounts, each with one subscription: {o.mix} (past due "
        f"in or after the {settings.BILLING_GRACE_PERIOD.days}-day grace period); four tariffs.",
        cache_text,
        figures,
        f"**Access/floor, median of the per-round ratios ({ratios_text(o.ratios)}): {o.ratio:.2f}. "
        f"Target ≥ {TARGET_RATIO:.2f}: {met}.**{errors}",
        "**Queries per access request**, counted in-process through Django's WSGI handler, on each "
        "viewer's second request (what a polling frontend sends; at most one, asserted by the run):",
        queries,
        f"Under load, PostgreSQL counted **{o.transactions_per_request:.2f} transactions per access "
        "request** (server-side, all access runs): on a cache miss the query, plus the `SELECT 1` with "
        "which Django checks a persistent connection before the first query of each request "
        "(`CONN_HEALTH_CHECKS`); none on a hit; and each listener's `SELECT 1` after a second without "
        "notifications.",
        cpu_text + " This leaves out HTTP, gunicorn and wrk, most of what the floor costs, so its "
        "ratio is lower than the load test's; it shows how the endpoint's own cost splits between "
        "Python and PostgreSQL, and moves less than throughput with the machine's other load.",
        "**What the numbers mean.** The floor (`bench/floor/`: a DRF view with no authentication that "
        "answers a constant JSON body) is what any request costs on this stack: wrk, the HTTP "
        "connection, gunicorn, Django's middleware, DRF's dispatch and JSON rendering. The ratio is the "
        "share of that throughput the access endpoint keeps while it also authenticates the JWT, finds "
        "the account and its live subscription (in its cache, or in PostgreSQL), applies the access "
        "rule and serialises the answer: at "
        f"{o.ratio:.2f}, an access request costs {1 / o.ratio:.1f} times the machine time of a floor "
        "request. Absolute figures move with the machine's other load; the ratio, taken within each "
        "round and then its median, so that one noisy round does not move the headline, is what to "
        "compare between runs and machines.",
    ]
    return "\n\n".join(markdown_paragraph(block) for block in blocks)


if __name__ == "__main__":
    sys.exit(main())
