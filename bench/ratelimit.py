"""Benchmark the outgoing rate limit: threads calling the sandbox through one shared Redis limit.

    .venv/bin/python -m bench.ratelimit --calls 250 --threads 8 --rate 25

Starts the offline Stripe sandbox in a process of its own, then has `--threads` threads create
`--calls` customers through the Stripe gateway twice: first with no limit (the baseline: how
fast these callers go on their own), then through a `RedisRateLimiter` at `--rate` calls per
second. For the limited run it reports the pace the limiter granted (its slots, on Redis's
clock) and the pace at which the requests reached the sandbox (on arrival, as a provider
counts them), each against the configured rate. This is where the figure "the limit, not the
callers, sets the pace" lives: on a busy machine it moves, so no test asserts it
(payments/tests/test_ratelimit.py asserts the slots the limiter decided instead). Prints the
figures and writes them to docs/benchmarks.md.
"""

import argparse
import itertools
import os
import platform
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.options import positive_int
from bench.renewals_processes import SandboxProcess
from bench.renewals_stats import bucket_needed, busiest_window
from bench.report import docs_write_section, markdown_paragraph, markdown_table
from payments.gateways.base import CustomerRequest
from payments.gateways.ratelimit import KEY_PREFIX, Grant, RateLimiter, RedisRateLimiter
from payments.gateways.stripe import StripeGateway

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_KEY = "bench/ratelimit"
DOCS_HEADING = "## Outgoing rate limit (`bench/ratelimit`)"
API_KEY = "sk_test_bench_ratelimit"
WEBHOOK_SECRET = "whsec_bench_ratelimit"


@dataclass(frozen=True)
class Options:
    calls: int
    threads: int
    rate: float
    redis_url: str
    docs_path: Path | None

    def command(self) -> str:
        return (
            f".venv/bin/python -m bench.ratelimit --calls {self.calls} --threads {self.threads} "
            f"--rate {self.rate:g}"
        )


@dataclass
class Run:
    """One pass of the threads over every call, with or without the limiter."""

    label: str
    calls: int
    wall_seconds: float = float("nan")
    arrivals: list[float] = field(default_factory=list)  # at the sandbox, its clock
    slots: list[float] = field(default_factory=list)  # granted by the limiter, Redis's clock

    @property
    def arrival_rate(self) -> float:
        """Return the mean rate of requests at the sandbox, from the first to the last."""
        return _mean_rate(self.arrivals)

    @property
    def granted_rate(self) -> float:
        """Return the mean rate of the limiter's slots, from the first to the last."""
        return _mean_rate(self.slots)

    @property
    def closest_slots(self) -> float:
        ordered = sorted(self.slots)
        return min((b - a for a, b in itertools.pairwise(ordered)), default=float("nan"))


def _mean_rate(times: list[float]) -> float:
    if len(times) < 2 or max(times) <= min(times):
        return float("nan")
    return (len(times) - 1) / (max(times) - min(times))


def _positive_rate(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def parse_options(argv: list[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=positive_int, default=250, help="customers to create per run")
    parser.add_argument("--threads", type=positive_int, default=8, help="threads calling at once")
    parser.add_argument("--rate", type=_positive_rate, default=25.0, help="the limit, calls per second")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("STRIPE_RATE_LIMIT_REDIS_URL")
        or os.environ.get("CELERY_BROKER_URL")
        or "redis://127.0.0.1:6379/0",
        help="the Redis the limit is kept in (a key of this run alone, deleted afterwards)",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    return Options(
        calls=args.calls,
        threads=args.threads,
        rate=args.rate,
        redis_url=args.redis_url,
        docs_path=None if args.no_docs else DOCS_PATH,
    )


class RecordingLimiter:
    """The shared limiter, keeping every slot it granted."""

    def __init__(self, limiter: RedisRateLimiter) -> None:
        self._limiter = limiter
        self.slots: list[float] = []

    def acquire(self) -> Grant:
        grant = self._limiter.acquire()
        self.slots.append(grant.at)  # list.append is atomic under the GIL
        return grant


def _run(label: str, options: Options, sandbox: SandboxProcess, limiter: RateLimiter | None) -> Run:
    gateway = StripeGateway(
        API_KEY, WEBHOOK_SECRET, api_base=sandbox.base_url, max_retries=0, timeout=30, limiter=limiter
    )
    sandbox.delete("/requests")
    prefix = uuid.uuid4().hex[:8]

    def create(number: int) -> str:
        key = f"bench-{prefix}-{number}"
        return gateway.create_customer(CustomerRequest(account_ref=key, email="", idempotency_key=key))

    run = Run(label=label, calls=options.calls)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=options.threads) as pool:
        created = list(pool.map(create, range(options.calls)))
    run.wall_seconds = time.monotonic() - started
    if len(set(created)) != options.calls:
        raise RuntimeError(f"{label}: {len(set(created))} customers created for {options.calls} calls")
    run.arrivals = [request["time"] for request in sandbox.api_requests() if request["method"] == "POST"]
    if isinstance(limiter, RecordingLimiter):
        run.slots = limiter.slots
    return run


def figures_text(options: Options, alone: Run, limited: Run, *, started_at: datetime, load: float) -> str:
    """Return the Markdown block of a run's figures."""
    rate = options.rate
    rows = [
        [
            "callers alone (no limit)",
            f"{alone.wall_seconds:.1f}",
            f"{alone.arrival_rate:.1f}",
            "-",
            "-",
            str(busiest_window(alone.arrivals)),
            f"**{alone.arrival_rate / rate:.2f}**",
        ],
        [
            f"through the limit at {rate:g}/s",
            f"{limited.wall_seconds:.1f}",
            f"{limited.arrival_rate:.1f}",
            f"{limited.granted_rate:.2f}",
            f"{limited.closest_slots * 1000:.1f}",
            str(busiest_window(limited.arrivals)),
            f"**{limited.arrival_rate / rate:.2f}**",
        ],
    ]
    table = markdown_table(
        [
            "run",
            "wall s",
            "arrivals/s",
            "slots granted/s",
            "closest slots ms",
            "busiest 1-s window",
            "arrivals / rate",
        ],
        rows,
    )
    interval_ms = 1000 / rate
    bucket = bucket_needed(limited.arrivals, rate)
    paragraphs = [
        f"_Generated by `bench/ratelimit.py` on {started_at:%Y-%m-%d %H:%M} UTC; rerun it to refresh "
        "this block._",
        f"```\n{options.command()}\n```",
        markdown_paragraph(
            f"**Machine:** {os.cpu_count()} CPU cores ({platform.machine()}), shared by the callers, "
            f"the sandbox and Redis, and with whatever else ran (load average {load:.2f} at the "
            f"start). Python {platform.python_version()}."
        ),
        markdown_paragraph(
            f"**Set-up:** {options.threads} threads in one process create {options.calls} customers "
            "at the offline Stripe sandbox (a process of its own) through the Stripe gateway, once "
            f"with no limit and once through a `RedisRateLimiter` at {rate:g} calls/s (burst 1). "
            f"**Baseline: the configured rate, {rate:g}/s**; the callers alone show how fast they "
            "would go without it."
        ),
        table,
        "- *Slots granted/s* and *closest slots*: the limiter's own decisions, on Redis's clock; the "
        f"slots are never closer than 1/{rate:g} s = {interval_ms:.1f} ms. *Arrivals*: requests as "
        "the sandbox received them, timed on arrival, as a provider counts them; *busiest 1-s window*: "
        "the most in any sliding window [t, t + 1 s).",
        markdown_paragraph(
            f"**What the numbers mean.** Alone, these callers reach {alone.arrival_rate / rate:.1f} "
            f"times the rate; through the limit the requests arrive at {limited.arrival_rate / rate:.2f} "
            "of it: the limit, not the callers, sets the pace. A request arrives when its thread wakes "
            "after its slot, so on a busy machine a late thread shares a second with the next slots' "
            f"requests; a token bucket at {rate:g}/s holding {bucket} token(s) would have let every "
            "arrival in. These are timings of one run on a shared machine: compare the ratios, not the "
            "seconds."
        ),
    ]
    return "\n\n".join(paragraphs)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    started_at = datetime.now(UTC)
    load = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="bench-ratelimit-"))
    name = f"bench-{uuid.uuid4().hex}"
    client: Any = redis.Redis.from_url(options.redis_url)
    sandbox = SandboxProcess(scratch / "sandbox.log")
    try:
        print(f"Sandbox at {sandbox.base_url}; {options.threads} threads, {options.calls} calls per run.")
        alone = _run("alone", options, sandbox, None)
        print(f"Alone: {alone.arrival_rate:.1f} requests/s at the sandbox.")
        limiter = RecordingLimiter(
            RedisRateLimiter(
                client=client, name=name, rate=options.rate, max_wait=options.calls / options.rate
            )
        )
        limited = _run("limited", options, sandbox, limiter)
        print(f"Limited: {limited.arrival_rate:.1f} requests/s at the sandbox, limit {options.rate:g}/s.")
    finally:
        sandbox.stop()
        client.delete(KEY_PREFIX + name)
        shutil.rmtree(scratch, ignore_errors=True)
    block = figures_text(options, alone, limited, started_at=started_at, load=load)
    print()
    print(block)
    if options.docs_path is not None:
        docs_write_section(path=options.docs_path, key=DOCS_KEY, heading=DOCS_HEADING, generated=block)
        print(f"\nWrote the figures to {options.docs_path}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
