"""The billing service end to end: a live server, the Stripe sandbox, a real Celery worker, a browser.

- `live_server` is pytest-django's live server (transactional database), bound to 127.0.0.1;
- `sandbox` is the offline Stripe sandbox, delivering signed webhooks to the live server and
  keeping its state in a file, so a test can read everything it stored;
- `celery_worker` is `celery -A config worker` in a subprocess, on the test database and the
  test process's broker, so webhook events are settled the way production settles them;
- `page` is a Chromium page driven by Playwright; `screens` saves a screenshot per step under
  `test-artifacts/e2e/`, and a failing test gets one more plus the worker's output.

Chromium comes from the distribution (`scripts/ensure_system_packages.sh`), not `playwright install`.
"""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from pytest_django.live_server_helper import LiveServer

from accounts.tokens import issue_token
from billing.pages import DEMO_VIEWER_ID
from config.celery import app as celery_app
from payments.models import WebhookEvent, WebhookEventStatus
from payments.sandbox import SandboxHandle, start_sandbox
from payments.sandbox.yookassa import YooKassaSandboxHandle, start_yookassa_sandbox
from payments.tests.sandbox_helpers import Control

BASE_DIR = Path(django_settings.BASE_DIR)
ARTIFACTS = BASE_DIR / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WEBHOOK_PATH = "/api/v1/webhooks/stripe/"
YOOKASSA_WEBHOOK_PATH = "/api/v1/webhooks/yookassa/"
# Every wait is bounded; these bounds are generous, the usual case takes well under a second.
WORKER_START_TIMEOUT = 30.0
SETTLE_TIMEOUT = 20.0
BROWSER_TIMEOUT_MS = 15_000
POLL_INTERVAL = 0.05

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def poll(predicate: Callable[[], Any], *, timeout: float = SETTLE_TIMEOUT) -> Any:
    """Return the predicate's first truthy value, or its last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(POLL_INTERVAL)


def wait_for(predicate: Callable[[], Any], *, what: str, timeout: float = SETTLE_TIMEOUT) -> Any:
    """Return the predicate's first truthy value; fail naming `what` after `timeout` seconds."""
    value = poll(predicate, timeout=timeout)
    if not value:
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
    return value


# --- Reports: screenshots and worker output for failing tests ---------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, and attach the worker's output to a failure."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    worker = item.funcargs.get("celery_worker") if isinstance(item, pytest.Function) else None
    if report.failed and isinstance(worker, CeleryWorker):
        report.sections.append(("Celery worker output (this test)", worker.output(since=worker.mark)))
    return report


def _failed(node: pytest.Item) -> bool:
    return any(report.failed for report in node.stash.get(_REPORTS, {}).values())


# --- The live server and the Stripe sandbox -------------------------------------


@pytest.fixture(scope="session")
def live_server(django_db_setup: None) -> Iterator[LiveServer]:
    """Serve the app with pytest-django's live server on 127.0.0.1 (its default, localhost, may be ::1).

    It stops before the test database is dropped, so none of its threads still holds a connection.
    """
    server = LiveServer("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sandbox_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the file the sandbox keeps its objects, keys and deliveries in."""
    return tmp_path_factory.mktemp("stripe-sandbox") / "state.sqlite3"


@pytest.fixture(scope="session")
def sandbox(live_server: LiveServer, sandbox_state: Path) -> Iterator[SandboxHandle]:
    """Start the Stripe sandbox, delivering signed webhooks to the live server."""
    handle = start_sandbox(
        webhook_url=live_server.url + WEBHOOK_PATH,
        webhook_secret=django_settings.STRIPE_WEBHOOK_SECRET,
        state_path=sandbox_state,
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def yookassa_sandbox(live_server: LiveServer) -> Iterator[YooKassaSandboxHandle]:
    """Start the YooKassa sandbox, sending its (unsigned) notifications to the live server from 127.0.0.1."""
    handle = start_yookassa_sandbox(
        webhook_url=live_server.url + YOOKASSA_WEBHOOK_PATH, webhook_retry_base=0.2, webhook_retry_cap=2.0
    )
    yield handle
    handle.stop()


# --- The Celery worker ---------------------------------------------------------


@dataclass
class CeleryWorker:
    """A `celery worker` subprocess and the file its output goes to."""

    process: subprocess.Popen[bytes]
    log_path: Path
    # Where the current test's part of the output starts.
    mark: int = 0

    def output(self, *, since: int = 0) -> str:
        """Return the worker's output from byte offset `since`."""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode("utf-8", "replace")

    def size(self) -> int:
        """Return how many bytes of output there are so far."""
        return self.log_path.stat().st_size

    def stop(self) -> None:
        """Stop warmly (running tasks finish), then kill if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _test_database_url() -> str:
    """Return the address of the test database the live server uses, as a DATABASE_URL."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = quote(str(db["PASSWORD"] or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    name = quote(db["NAME"], safe="")
    host = db["HOST"] or ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    if host.startswith("/"):  # a socket directory goes in the path, as django-environ reads it
        return f"postgres://{credentials}{port}/{host}/{name}"
    return f"postgres://{credentials}{host}{port}/{name}"


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None,
    django_db_blocker: Any,
    sandbox: SandboxHandle,
    yookassa_sandbox: YooKassaSandboxHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryWorker]:
    """Run a Celery worker on the test database and the test process's broker.

    YooKassa is one of its providers, on the YooKassa sandbox (its shop set in the environment
    makes it one, config/settings/base.py); only tests that configure it too use it.
    """
    with django_db_blocker.unblock():
        assert connection.vendor == "postgresql", "the e2e tests need PostgreSQL (DATABASE_URL)"
        database_url = _test_database_url()
    broker_url = django_settings.CELERY_BROKER_URL
    # Tasks other tests enqueued and nobody ran would reach this worker and act on our database.
    celery_app.control.purge()
    log_path = tmp_path_factory.mktemp("celery-worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "STRIPE_API_BASE": sandbox.base_url,
        "YOOKASSA_SHOP_ID": django_settings.YOOKASSA_SHOP_ID,
        "YOOKASSA_API_BASE": yookassa_sandbox.api_base,
        # The worker reads the billing clock the tests move (`billing_advance`), as `make run`'s does.
        "BILLING_CLOCK_FILE": str(django_settings.BILLING_CLOCK_FILE),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "config",
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        "2",
        # DEBUG, so that whatever the worker could ever log is in the output the tests search.
        "--loglevel",
        "DEBUG",
        "--hostname",
        f"e2e-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - the venv's celery, fixed arguments, no shell
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    worker = CeleryWorker(process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while " ready." not in worker.output():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start:\n{worker.output()}")
            time.sleep(POLL_INTERVAL)
        yield worker
    finally:
        worker.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log_path, ARTIFACTS / "celery-worker.log")


# --- One test's billing service ---------------------------------------------------


@dataclass
class Site:
    """The billing service as one test sees it."""

    base_url: str
    sandbox: SandboxHandle
    sandbox_state: Path
    control: Control
    worker: CeleryWorker

    def url(self, path: str) -> str:
        """Return the live server's address of `path`."""
        return self.base_url + path

    def viewer_get(self, path: str, *, user_id: str = DEMO_VIEWER_ID) -> Any:
        """GET an API path over HTTP as a viewer and return the JSON answer."""
        request = urllib.request.Request(  # noqa: S310 - the live server on 127.0.0.1
            self.url(path), headers={"Authorization": f"Bearer {issue_token(user_id=user_id)}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - as above
            return json.loads(response.read())

    def settled(self) -> bool:
        """Return whether every webhook is delivered and every stored event handled by the worker."""
        if self.worker.process.poll() is not None:
            pytest.fail(f"the Celery worker exited:\n{self.worker.output(since=self.worker.mark)}")
        deliveries = self.control.get("/deliveries")["data"]
        if any(delivery["status"] in ("pending", "in_flight") for delivery in deliveries):
            return False
        return not WebhookEvent.objects.filter(status=WebhookEventStatus.RECEIVED).exists()

    def wait_until_settled(self) -> None:
        """Wait until the sandbox has nothing left to deliver and the worker nothing left to handle."""
        wait_for(self.settled, what="webhooks delivered and processed by the Celery worker")


def _no_other_session_busy() -> bool:
    """Return whether no other session on the test database runs a query or holds a transaction open.

    A request the browser sent just before its page closed may still be reading on a live
    server thread; the flush that follows each test truncates every table, and a reader holding
    one table while waiting for another would deadlock it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
        )
        (busy,) = cursor.fetchone()
    return busy == 0


@pytest.fixture
def site(
    live_server: LiveServer,
    sandbox: SandboxHandle,
    sandbox_state: Path,
    yookassa_sandbox: YooKassaSandboxHandle,
    celery_worker: CeleryWorker,
    settings: Any,
) -> Iterator[Site]:
    """Point the service at the live server and the sandboxes, load the demo data; settle at the end.

    The YooKassa sandbox runs and is reset too; YooKassa takes part (a provider, its demo
    tariff) only in the tests that ask for `yookassa_site`.
    """
    control = Control(sandbox)
    control.post("/reset")
    yookassa_sandbox.sandbox.reset()
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CHECKOUT_SUCCESS_URL = live_server.url + "/checkout/success/"
    settings.CHECKOUT_CANCEL_URL = live_server.url + "/checkout/cancel/"
    settings.STRIPE_API_BASE = sandbox.base_url
    call_command("seed_demo", base_url=live_server.url, stdout=io.StringIO())
    celery_worker.mark = celery_worker.size()
    current = Site(
        base_url=live_server.url,
        sandbox=sandbox,
        sandbox_state=sandbox_state,
        control=control,
        worker=celery_worker,
    )
    yield current
    # Nothing may be in flight when the database is flushed for the next test.
    current.wait_until_settled()
    wait_for(_no_other_session_busy, what="the live server's last requests to finish with the database")


@pytest.fixture
def yookassa_site(site: Site, yookassa_sandbox: YooKassaSandboxHandle, settings: Any) -> Site:
    """Make YooKassa a provider of the live server too (as it is of the worker) and seed its demo tariff."""
    settings.PAYMENT_PROVIDERS = {
        **settings.PAYMENT_PROVIDERS,
        "yookassa": "payments.gateways.yookassa.setup.gateway_from_settings",
    }
    settings.YOOKASSA_API_BASE = yookassa_sandbox.api_base
    settings.YOOKASSA_MAX_RETRIES = 0
    call_command("seed_demo", base_url=site.base_url, stdout=io.StringIO())
    return site


# --- The browser ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Start Playwright's driver."""
    # Playwright's sync API parks an asyncio loop in this thread, which Django takes for async
    # code and then refuses the ORM. The tests' ORM calls are plain synchronous code.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as driver:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Launch the distribution's Chromium, headless."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_system_packages.sh (as root) to install it")
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@dataclass
class Screens:
    """Numbered screenshots of one test's steps."""

    page: Page
    directory: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, step: str) -> Path:
        """Save a full-page screenshot named after the step."""
        path = self.directory / f"{len(self.taken) + 1:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def page(browser: Browser, transactional_db: None, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Open a page in a fresh browser context; screenshot it if the test fails.

    It asks for the database so that it is closed before the database is flushed for the next
    test: the account page polls the API every few seconds, and a poll reading tables while the
    flush truncates them deadlocks it.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    if _failed(request.node):
        directory = ARTIFACTS / request.node.name
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PlaywrightError):  # a page stuck loading has no picture to give
            tab.screenshot(path=str(directory / "failure.png"), full_page=True, timeout=5_000)
    context.close()


@pytest.fixture
def screens(page: Page, request: pytest.FixtureRequest) -> Screens:
    """Return the screenshot taker of this test, its directory emptied first."""
    directory = ARTIFACTS / request.node.name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return Screens(page=page, directory=directory)


# --- The storefront, as a viewer uses it ---------------------------------------------


@dataclass
class Storefront:
    """The demo storefront and the sandbox's checkout page, driven like a viewer would."""

    site: Site
    page: Page
    screens: Screens

    def open(self) -> None:
        """Open the storefront and wait for the tariffs and the access badge."""
        self.page.goto(self.site.url("/storefront/"))
        expect(self.page.locator("article.tariff").first).to_be_visible()
        expect(self.page.locator("#access")).to_have_text("Access: no")
        self.screens.take("storefront")

    def subscribe(self, slug: str) -> str:
        """Press Subscribe on a tariff and go on from our terms page; return the checkout page's address."""
        self.page.locator(f'article.tariff[data-slug="{slug}"]').get_by_role(
            "button", name="Subscribe"
        ).click()
        self.continue_to_payment()
        return self.page.url

    def continue_to_payment(self) -> None:
        """On our review page (the terms), press Continue to payment and wait for the provider's page."""
        self.page.wait_for_url(lambda url: urlsplit(url).path == "/checkout/review/")
        expect(self.page.locator("#terms")).to_be_visible()
        self.screens.take("review")
        self.page.locator("#continue").click()
        self.page.wait_for_url(lambda url: url.startswith(self.site.sandbox.base_url + "/checkout/"))
        expect(self.page.get_by_role("button", name="Pay")).to_be_visible()
        self.screens.take("sandbox-checkout")

    def pay(self, card_number: str, *, exp: str = "12/34", cvc: str = "123") -> None:
        """Fill in the card and press Pay."""
        self.page.locator('input[name="card_number"]').fill(card_number)
        self.page.locator('input[name="exp"]').fill(exp)
        self.page.locator('input[name="cvc"]').fill(cvc)
        self.screens.take("card-filled")
        self.page.get_by_role("button", name="Pay").click()

    def wait_for_payment_received(self) -> None:
        """Wait for our success page to say the payment was received."""
        self.wait_for_result("Payment received")

    def wait_for_result(self, headline: str) -> None:
        """Wait for our success page to show `headline` (and, once settled, the amount and next charge)."""
        self.page.wait_for_url(lambda url: urlsplit(url).path == "/checkout/success/")
        expect(self.page.locator("#headline")).to_have_text(headline, timeout=SETTLE_TIMEOUT * 1000)
        self.screens.take(headline.lower().replace(" ", "-"))

    def open_account(self) -> None:
        """Open the storefront and wait until the account panel and the plans are drawn."""
        self.page.goto(self.site.url("/storefront/"))
        expect(self.page.locator("article.tariff").first).to_be_visible()
        expect(self.page.locator("#account").get_by_text("Loading…")).to_have_count(0)
        self.screens.take("account")

    def subscribe_and_pay(self, slug: str, card_number: str, *, headline: str = "Payment received") -> None:
        """Subscribe from the storefront, pay on the provider's page, and wait for the result page."""
        self.open_account()
        self.subscribe(slug)
        self.pay(card_number)
        self.wait_for_result(headline)
        self.site.wait_until_settled()


@pytest.fixture
def storefront(site: Site, page: Page, screens: Screens) -> Storefront:
    """Return the storefront driver of this test."""
    return Storefront(site=site, page=page, screens=screens)
