"""Soak subscribing: N viewers race subscribes for different tariffs, then pay every page they got.

    .venv/bin/python -m bench.soak_subscribe --viewers 1000

Creates the throwaway `billing_bench_soak` database with three tariffs, starts the offline
Stripe sandbox and the service under gunicorn on 127.0.0.1, then:
1. every viewer (a new cinema user) sends one subscribe per tariff, all at once (no promo
   code), `--concurrency` viewers at a time;
2. every Checkout page any answer handed out, replaced ones too, is paid with 4242 through
   the sandbox's control API (as the hosted page's form would);
3. the reconciliation jobs run until a pass of them changes nothing: webhooks are not
   delivered, the missed-events job reads Stripe's event list and feeds the same handlers;
4. each charge the sandbox accepted is classified: it gives its viewer access, it was refunded
   in full at Stripe, or neither (lost), and the one consistent-state check of the
   concurrency tests (tests/concurrency/invariants.py) runs over every viewer.
Prints the figures and writes them to docs/benchmarks.md; drops the database again, also on
Ctrl-C. Asserts nothing about time; exits 1 if any answer was a 5xx, a charge was lost or the
state is inconsistent. tests/concurrency/test_subscribe_soak.py runs the same soak on 40
viewers against pytest-django's live server.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import django

from bench.options import positive_int

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_KEY = "bench/soak_subscribe"
DOCS_HEADING = "## Subscribe soak (`bench/soak_subscribe`)"
# The only database this benchmark creates and drops.
DATABASE_NAME = "billing_bench_soak"
# (slug, name, price in minor units): the tariffs every viewer asks for at once.
TARIFFS = (
    ("soak-monthly", "Monthly", 39900),
    ("soak-hd", "Monthly HD", 59900),
    ("soak-4k", "Monthly 4K", 79900),
)
CARD = "4242424242424242"
REQUEST_TIMEOUT_SECONDS = 60


# --- talking to the service and the sandbox ----------------------------------------------------


class SandboxApi(Protocol):
    """What the soak needs of the sandbox's control API (payments/tests/sandbox_helpers.Control has it)."""

    def pay(self, session_id: str, card_number: str) -> Any: ...

    def objects(self, type_: str) -> list[dict[str, Any]]: ...


class SandboxControl:
    """The sandbox's control API at `base_url` (docs/sandbox.md), over plain HTTP."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/") + "/_sandbox"

    def _request(self, method: str, endpoint: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            self.base + endpoint,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}") | {"_status": exc.code}

    def pay(self, session_id: str, card_number: str) -> Any:
        """Pay a Checkout Session with a test card, by the hosted form's code path."""
        return self._request("POST", f"/checkout/{session_id}/pay", {"card_number": card_number})

    def objects(self, type_: str) -> list[dict[str, Any]]:
        """Return every object of one type the sandbox holds."""
        data: list[dict[str, Any]] = self._request("GET", "/objects?" + urlencode({"type": type_}))["data"]
        return data


@dataclass(frozen=True)
class Answer:
    """One subscribe request and the service's answer."""

    user_id: str
    tariff: str
    status: int  # 0: no answer (connection refused or reset, time-out)
    error: str = ""
    checkout_id: str = ""
    session_id: str = ""


def _subscribe(base_url: str, token: str, user_id: str, tariff: str) -> Answer:
    request = urllib.request.Request(
        f"{base_url}/api/v1/subscriptions/",
        data=json.dumps({"tariff": tariff}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            status, body = response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"error": {"code": raw[:80].decode(errors="replace")}}
        return Answer(user_id, tariff, exc.code, error=str((body.get("error") or {}).get("code", "")))
    except (urllib.error.URLError, OSError) as exc:
        return Answer(user_id, tariff, 0, error=type(exc).__name__)
    url = body.get("checkout_url") or ""
    session_id = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] if url else ""
    return Answer(user_id, tariff, status, checkout_id=str(body["checkout"]["id"]), session_id=session_id)


def race_subscribes(
    *, base_url: str, user_ids: list[str], tariffs: list[str], concurrency: int
) -> list[Answer]:
    """Send each viewer's subscribes (one per tariff) at once, `concurrency` viewers at a time."""
    from accounts.tokens import issue_token

    def viewer(user_id: str) -> list[Answer]:
        token = issue_token(user_id=user_id, ttl_seconds=3600)
        start = threading.Barrier(len(tariffs))

        def one(tariff: str) -> Answer:
            start.wait()
            return _subscribe(base_url, token, user_id, tariff)

        with ThreadPoolExecutor(max_workers=len(tariffs)) as pool:
            return list(pool.map(one, tariffs))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return [answer for answers in pool.map(viewer, user_ids) for answer in answers]


def pay_pages(*, sandbox: SandboxApi, session_ids: list[str], concurrency: int) -> Counter[str]:
    """Pay every page once with 4242; return how many ended each way (succeeded, unavailable, ...)."""

    def pay(session_id: str) -> str:
        return str(sandbox.pay(session_id, CARD).get("outcome") or "error")

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return Counter(pool.map(pay, session_ids))


# --- the soak and its figures ---------------------------------------------------------------


@dataclass
class SoakReport:
    """What a soak sent, what it got back and what became of every accepted charge."""

    viewers: int
    tariffs: int
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    paid: Counter[str] = field(default_factory=Counter)
    charges: int = 0
    with_access: int = 0
    refunded: int = 0
    lost: list[str] = field(default_factory=list)
    viewers_with_access: int = 0
    viewers_charged_twice: int = 0
    reconciliation_runs: int = 0
    reconciliation_fixed: int = 0
    reconciliation_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def server_errors(self) -> int:
        """Return how many answers were 5xx, or no answer at all."""
        return sum(count for status, count in self.statuses.items() if status >= 500 or status == 0)

    @property
    def ok(self) -> bool:
        return not (self.server_errors or self.lost or self.violations or self.reconciliation_errors)

    def lines(self) -> list[str]:
        """Return the figures as lines of text."""
        statuses = ", ".join(
            f"{status or 'no answer'}: {count}" for status, count in sorted(self.statuses.items())
        )
        errors = ", ".join(f"{code}: {count}" for code, count in self.errors.most_common()) or "none"
        paid = ", ".join(f"{outcome}: {count}" for outcome, count in self.paid.most_common()) or "none"
        lines = [
            f"viewers: {self.viewers}, each sending {self.tariffs} subscribes at once (one per tariff)",
            f"requests: {self.requests}; status codes: {statuses}; 5xx or no answer: {self.server_errors}",
            f"error codes: {errors}",
            f"checkout pages handed out: {self.pages}; paid with 4242: {paid}",
            f"charges the sandbox accepted: {self.charges}: giving access {self.with_access}, "
            f"refunded in full {self.refunded}, lost (neither) {len(self.lost)}",
            f"viewers with access: {self.viewers_with_access}; viewers charged more than once "
            f"(unrefunded): {self.viewers_charged_twice}",
            f"reconciliation: {self.reconciliation_runs} runs, {self.reconciliation_fixed} fixes, "
            f"{len(self.reconciliation_errors)} errors",
            f"consistency violations: {len(self.violations)}",
            "seconds: " + ", ".join(f"{phase} {value:.1f}" for phase, value in self.seconds.items()),
        ]
        lines += [f"  LOST: {line}" for line in self.lost[:20]]
        lines += [f"  VIOLATION: {line}" for line in self.violations[:20]]
        lines += [f"  RECONCILIATION ERROR: {line}" for line in self.reconciliation_errors[:10]]
        return lines


def soak(
    *,
    base_url: str,
    sandbox: SandboxApi,
    viewers: int,
    tariffs: list[str],
    concurrency: int,
    user_prefix: str = "soak",
    progress: Callable[[str], None] | None = None,
) -> SoakReport:
    """Run the soak against a running service (its tariffs created) and its sandbox; return the figures."""
    from accounts.models import BillingAccount
    from billing.models import Subscription
    from payments.models import Payment
    from tests.concurrency.invariants import (
        StripeView,
        charge_fates,
        gives_access,
        invariant_violations,
        settle,
    )

    say = progress or (lambda message: None)
    report = SoakReport(viewers=viewers, tariffs=len(tariffs))
    user_ids = [f"{user_prefix}-{number:05d}" for number in range(viewers)]

    started = time.monotonic()
    answers = race_subscribes(base_url=base_url, user_ids=user_ids, tariffs=tariffs, concurrency=concurrency)
    report.seconds["subscribe"] = time.monotonic() - started
    report.requests = len(answers)
    report.statuses = Counter(answer.status for answer in answers)
    report.errors = Counter(answer.error for answer in answers if answer.error)
    say(f"sent {report.requests} subscribes in {report.seconds['subscribe']:.1f}s: {dict(report.statuses)}")

    started = time.monotonic()
    pages = sorted({answer.session_id for answer in answers if answer.session_id})
    report.pages = len(pages)
    report.paid = pay_pages(sandbox=sandbox, session_ids=pages, concurrency=concurrency)
    report.seconds["pay"] = time.monotonic() - started
    say(f"paid {report.pages} pages in {report.seconds['pay']:.1f}s: {dict(report.paid)}")

    started = time.monotonic()
    settlement = settle()
    report.seconds["settle"] = time.monotonic() - started
    report.reconciliation_runs, report.reconciliation_fixed = settlement.runs, settlement.fixed
    report.reconciliation_errors = settlement.errors
    say(f"settled in {report.seconds['settle']:.1f}s ({settlement.runs} reconciliation runs)")

    started = time.monotonic()
    view = StripeView.read(sandbox.objects)
    account_ids = list(BillingAccount.objects.filter(user_id__in=user_ids).values_list("pk", flat=True))
    payments = Payment.objects.filter(subscription__account_id__in=account_ids).select_related(
        "subscription__account"
    )
    fates = charge_fates(view, payments)
    report.charges = len(fates)
    report.with_access = sum(1 for fate in fates if fate.fate == "access")
    report.refunded = sum(1 for fate in fates if fate.fate == "refunded")
    report.lost = [str(fate) for fate in fates if fate.fate == "lost"]
    kept = Counter(fate.customer for fate in fates if fate.fate != "refunded")
    report.viewers_charged_twice = sum(1 for count in kept.values() if count > 1)
    report.viewers_with_access = sum(
        1
        for subscription in Subscription.objects.filter(account_id__in=account_ids)
        if gives_access(subscription)
    )
    report.violations = invariant_violations(view=view, account_ids=account_ids, settled=True)
    report.seconds["check"] = time.monotonic() - started
    return report


# --- the benchmark: database, sandbox, server -------------------------------------------------


@dataclass(frozen=True)
class Options:
    viewers: int
    concurrency: int
    workers: int
    threads: int
    rate: int
    docs_path: Path | None

    def command(self) -> str:
        return (
            f".venv/bin/python -m bench.soak_subscribe --viewers {self.viewers} "
            f"--concurrency {self.concurrency} --workers {self.workers} --threads {self.threads}"
        )


def parse_options(argv: list[str] | None = None) -> Options:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak_subscribe", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--viewers", type=positive_int, default=1000, help="viewers (default 1000)")
    parser.add_argument(
        "--concurrency", type=positive_int, default=16, help="viewers racing at a time (default 16)"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=2, help="gunicorn worker processes (default 2)"
    )
    parser.add_argument(
        "--threads", type=positive_int, default=8, help="threads per gunicorn worker (default 8)"
    )
    parser.add_argument(
        "--rate", type=int, default=0, help="outgoing Stripe requests per second per process (0 = no limit)"
    )
    parser.add_argument("--docs", type=Path, default=DOCS_PATH, help="Markdown file to write the figures to")
    parser.add_argument("--no-docs", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error("--rate must be 0 or more")
    return Options(
        viewers=args.viewers,
        concurrency=args.concurrency,
        workers=args.workers,
        threads=args.threads,
        rate=args.rate,
        docs_path=None if args.no_docs else args.docs,
    )


def _tariffs_create() -> list[str]:
    from tariffs.models import Tariff

    for slug, name, amount in TARIFFS:
        Tariff.objects.create(slug=slug, name=name, amount=amount, currency="RUB")
    return [slug for slug, _, _ in TARIFFS]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _commit() -> str:
    """Return the commit the service runs from (read-only: `git rev-parse`), or "unknown"."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def docs_block(
    options: Options, report: SoakReport, *, started_at: datetime, load: float, server: str
) -> str:
    """Return the Markdown block of docs/benchmarks.md for one run."""
    from bench.report import markdown_paragraph

    figures = "\n".join(report.lines())
    verdict = (
        "Every charge the sandbox accepted gives access or was refunded; no 5xx; the state is consistent."
        if report.ok
        else "**Failed:** see the LOST, VIOLATION and RECONCILIATION ERROR lines and the status codes."
    )
    machine = (
        f"**Machine:** {os.cpu_count()} CPU cores ({platform.machine()}), shared with other work (load "
        f"average {load:.2f} at the start). **Code:** commit {_commit()} and the working tree as it was. "
        f"**Server:** {server}, `bench.settings` on the throwaway `{DATABASE_NAME}` database; the offline "
        "Stripe sandbox in its own process; outgoing rate limit "
        + (f"{options.rate}/s per process." if options.rate else "off (the sandbox is not Stripe).")
    )
    paragraphs = [
        f"_Generated by `bench/soak_subscribe.py` on {started_at:%Y-%m-%d %H:%M} UTC; rerun it to refresh "
        "this block. Notes written by hand follow it._",
        f"```\n{options.command()}\n```",
        machine,
        f"```\n{figures}\n```",
        f"{verdict} The seconds are what this run took on a shared machine, not targets.",
    ]
    return "\n\n".join(markdown_paragraph(paragraph) for paragraph in paragraphs) + "\n"


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    from bench.renewals_processes import SandboxProcess

    scratch = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    sandbox: SandboxProcess | None = None
    database_created = False
    started_at, load = datetime.now(UTC), os.getloadavg()[0]
    try:
        sandbox = SandboxProcess(scratch / "sandbox.log")
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "bench.settings",
                "BENCH_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}",
                "STRIPE_SECRET_KEY": "sk_test_bench_soak",
                "STRIPE_WEBHOOK_SECRET": "whsec_bench_soak",
                "STRIPE_API_BASE": sandbox.base_url,
                "STRIPE_RATE_LIMIT_PER_SECOND": str(options.rate),
                "STRIPE_RATE_LIMIT_REDIS_URL": "",
                # Tasks queued on commit (notices, events, webhook handling) go nowhere: the
                # soak settles through the reconciliation jobs it runs itself.
                "CELERY_BROKER_URL": "memory://localhost/",
            }
        )
        django.setup()
        from bench.database import database_recreate
        from bench.server import GunicornConfig, gunicorn_running

        print(f"Creating and migrating {DATABASE_NAME}...")
        database_created = True
        database_recreate()
        tariffs = _tariffs_create()
        config = GunicornConfig(worker_class="gthread", workers=options.workers, threads=options.threads)
        with gunicorn_running(config=config, log_path=scratch / "gunicorn.log") as server:
            print(f"Serving on {server.base_url} ({config.describe()}); sandbox on {sandbox.base_url}.")
            report = soak(
                base_url=server.base_url,
                sandbox=SandboxControl(sandbox.base_url),
                viewers=options.viewers,
                tariffs=tariffs,
                concurrency=options.concurrency,
                progress=print,
            )
    except KeyboardInterrupt:
        print("\nInterrupted: cleaning up.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if sandbox is not None:
            sandbox.stop()
        if database_created:
            from bench.database import database_drop

            database_drop()
            print(f"Dropped the {DATABASE_NAME} database.")
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n".join(["", *report.lines()]))
    block = docs_block(options, report, started_at=started_at, load=load, server=config.describe())
    if options.docs_path is not None:
        from bench.report import docs_write_section

        docs_write_section(path=options.docs_path, key=DOCS_KEY, heading=DOCS_HEADING, generated=block)
        print(f"Wrote the figures to {options.docs_path}.")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
