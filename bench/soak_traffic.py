"""What bench/soak throws at the service: viewers, staff, and the faults.

- Viewers: some poll `GET /api/v1/access/` all along, each as a viewer whose subscription
  is paid and renewing (so each "no" is one a paying viewer would see); new ones subscribe
  (`POST /api/v1/subscriptions/` with an Idempotency-Key, retried as the docs say on a 503 or
  no answer), pay the Checkout page through the sandbox's control API (the hosted form's code
  path), then do what our result page does, polling `GET /api/v1/checkouts/{id}/` until the
  checkout is settled, and wait for access.
- Staff: refund random paid payments, in full or in part, through the refund service
  (`refund_create`, as the admin's form does), submitting the form again while the provider's
  answer is missing.
- Faults: the sandbox's `chance` faults on every API request; a worker SIGKILLed every few
  seconds and replaced (`WorkerKiller`).

Every answer is tallied; nothing here decides whether the run passed (bench/soak_checks.py).
"""

import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bench.soak_processes import WorkerCrew
from bench.soak_subscribe import CARD, SandboxControl

REQUEST_TIMEOUT_SECONDS = 60
TOKEN_SECONDS = 6 * 3600
# A viewer retries a subscribe answered 503 (or not at all) with the same key, waiting longer each time.
SUBSCRIBE_TRIES = 8
# How long a viewer who paid may wait for access, the result page polling all along: past it,
# the soak reports a paying viewer left without access (a generous bound on a busy machine).
ACCESS_WAIT_SECONDS = 120
# How many times staff submit one refund form while the provider's answer is missing.
REFUND_SUBMISSIONS = 3
KEPT = 20  # examples of each kind of problem kept for the report
T = TypeVar("T")


# --- the faults the sandbox throws ------------------------------------------------------------


def fault_rules(rate: float) -> list[dict[str, Any]]:
    """Return the sandbox's fault rules for `rate`: that share of errors, of time-outs, of lost answers.

    Every API request draws each rule in turn; the first that strikes decides. Lost answers are
    requests carried out whose answer never arrives: half answered 500, half never answered.
    """
    return [
        {"mode": "error", "status": 500, "chance": rate},
        {"mode": "timeout", "chance": rate},
        {"mode": "error", "status": 500, "when": "after", "chance": rate / 2},
        {"mode": "timeout", "when": "after", "chance": rate / 2},
    ]


def fault_kind(rule: dict[str, Any]) -> str:
    """Return the name a fault rule has in the report."""
    if rule.get("when") == "after":
        return "answer lost after acting (" + ("500" if rule["mode"] == "error" else "no answer") + ")"
    return "error 500" if rule["mode"] == "error" else "time-out"


# --- talking to the service ------------------------------------------------------------------


def http_json(
    method: str, url: str, *, token: str = "", payload: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Send one request; return (status, JSON body), status 0 when no answer came."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    data = None
    if payload is not None:
        data = json.dumps(payload).encode()
        all_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"error": {"code": raw[:80].decode(errors="replace")}}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, {"error": {"code": type(exc).__name__}}


@dataclass
class Tally:
    """Answers by status, and examples of the ones a viewer must never get."""

    statuses: Counter[int] = field(default_factory=Counter)
    broken: list[str] = field(default_factory=list)  # 5xx other than 503, or no answer
    broken_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, what: str, status: int, body: Any) -> None:
        """Count one answer to `what`; keep an example of it if no viewer should ever get it."""
        with self._lock:
            self.statuses[status] += 1
            if status == 0 or (status >= 500 and status != 503):
                self.broken_count += 1
                if len(self.broken) < KEPT:
                    code = (body or {}).get("error", {}).get("code", "") if isinstance(body, dict) else ""
                    self.broken.append(f"{what}: {status or 'no answer'} {code}".strip())


@dataclass
class ViewerFigures:
    """What the viewers did and saw."""

    polls: Tally = field(default_factory=Tally)
    denied: list[str] = field(default_factory=list)  # a paying viewer told "no access"
    denied_count: int = 0
    subscribes: Tally = field(default_factory=Tally)
    subscribe_retries: int = 0
    subscribed: int = 0
    gave_up_subscribing: list[str] = field(default_factory=list)
    paid: Counter[str] = field(default_factory=Counter)
    checkout_polls: Tally = field(default_factory=Tally)
    access_seconds: list[float] = field(default_factory=list)
    no_access_in_time: list[str] = field(default_factory=list)
    new_user_ids: list[str] = field(default_factory=list)


@dataclass
class RefundFigures:
    """What staff refunded."""

    full: int = 0
    partial: int = 0
    submissions: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    refunded_user_ids: set[str] = field(default_factory=set)
    refund_ids: list[str] = field(default_factory=list)


class Traffic:
    """Viewers and staff at work on the service from a pool of threads, until `stop()`."""

    def __init__(
        self,
        *,
        base_url: str,
        sandbox: SandboxControl,
        paying_user_ids: list[str],
        tariff: str,
        pollers: int,
        polls_per_second: float,
        threads: int,
        seed: int,
    ) -> None:
        self.base_url = base_url
        self.sandbox = sandbox
        self.paying_user_ids = paying_user_ids
        self.tariff = tariff
        self.viewers = ViewerFigures()
        self.refunds = RefundFigures()
        self._random = random.Random(seed)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="soak-traffic")
        self._jobs: list[Future[None]] = []
        self._pollers = [
            threading.Thread(
                target=self._poll, args=(pollers / polls_per_second,), name=f"soak-poller-{n}", daemon=True
            )
            for n in range(pollers)
        ]
        for poller in self._pollers:
            poller.start()

    # --- viewers ----------------------------------------------------------------------------

    def _token(self, user_id: str) -> str:
        from accounts.tokens import issue_token

        with self._lock:
            if user_id not in self._tokens:
                self._tokens[user_id] = issue_token(user_id=user_id, ttl_seconds=TOKEN_SECONDS)
            return self._tokens[user_id]

    def access(self, user_id: str) -> tuple[int, Any]:
        """Ask the service, as this viewer, whether they have access."""
        return http_json("GET", f"{self.base_url}/api/v1/access/", token=self._token(user_id))

    def _poll(self, interval: float) -> None:
        """Ask for a paying viewer's access, again and again; note every "no" one of them gets."""
        from core import clock

        figures = self.viewers
        while not self._stopping.wait(interval):
            with self._lock:
                user_id = self._random.choice(self.paying_user_ids)
            status, body = self.access(user_id)
            figures.polls.add("GET /api/v1/access/", status, body)
            # A full refund ends access: its viewer is no longer a paying one (decided afterwards,
            # since the refund may have been under way while the answer was on its way).
            if status == 200 and not body["has_access"]:
                with self._lock:
                    figures.denied_count += 1
                    figures.denied.append(f"{user_id} at {clock.now():%Y-%m-%d %H:%M:%S}")

    def denials_of_paying_viewers(self) -> list[str]:
        """Return the "no access" answers given to viewers no full refund ever touched."""
        return [line for line in self.viewers.denied if line.split()[0] not in self.refunds.refunded_user_ids]

    def new_viewer(self, user_id: str, *, delay: float) -> None:
        """Have a new viewer subscribe and pay, `delay` seconds from now."""
        self._jobs.append(self._pool.submit(self._subscribe_and_pay, user_id, delay))

    def _subscribe_and_pay(self, user_id: str, delay: float) -> None:
        if self._stopping.wait(delay):
            return
        figures = self.viewers
        with self._lock:
            figures.new_user_ids.append(user_id)
        page = self._subscribe(user_id)
        if page is None:
            return
        checkout_id, session_id = page
        outcome = str(self.sandbox.pay(session_id, CARD).get("outcome") or "error")
        with self._lock:
            figures.paid[outcome] += 1
        if outcome != "succeeded":
            return
        started = time.monotonic()
        settled = False
        while time.monotonic() - started < ACCESS_WAIT_SECONDS:
            if self._stopping.is_set():  # the soak was interrupted
                return
            if not settled:  # the result page: the service re-reads an open checkout from Stripe
                status, body = http_json("GET", f"{self.base_url}/api/v1/checkouts/{checkout_id}/")
                figures.checkout_polls.add("GET /api/v1/checkouts/{id}/", status, body)
                settled = status == 200 and body["status"] != "open"
            else:
                status, body = self.access(user_id)
                if status == 200 and body["has_access"]:
                    with self._lock:
                        figures.access_seconds.append(time.monotonic() - started)
                    return
            time.sleep(0.5)
        with self._lock:
            figures.no_access_in_time.append(f"{user_id} paid and had no access {ACCESS_WAIT_SECONDS}s later")

    def _subscribe(self, user_id: str) -> tuple[str, str] | None:
        """Subscribe as the docs tell a client to: one key, retried on 503 or no answer.

        Return the checkout's id and its Checkout Session's, or None if the viewer gave up.
        """
        figures = self.viewers
        key = f"soak-subscribe-{user_id}"
        for attempt in range(SUBSCRIBE_TRIES):
            status, body = http_json(
                "POST",
                f"{self.base_url}/api/v1/subscriptions/",
                token=self._token(user_id),
                payload={"tariff": self.tariff},
                headers={"Idempotency-Key": key},
            )
            figures.subscribes.add("POST /api/v1/subscriptions/", status, body)
            if status in (200, 201):
                with self._lock:
                    figures.subscribed += 1
                session_id = urlsplit(body["checkout_url"]).path.rstrip("/").rsplit("/", 1)[-1]
                return str(body["checkout"]["id"]), session_id
            if status not in (0, 503) or self._stopping.is_set():
                break
            with self._lock:
                figures.subscribe_retries += 1
            time.sleep(min(2**attempt * 0.5, 8))
        with self._lock:
            figures.gave_up_subscribing.append(f"{user_id}: last answer {status}")
        return None

    # --- staff --------------------------------------------------------------------------------

    def refund(self, *, full: bool, delay: float) -> None:
        """Have staff refund a random paid payment, in full or a quarter of it, `delay` seconds from now."""
        self._jobs.append(self._pool.submit(self._refund, full, delay))

    def _refund(self, full: bool, delay: float) -> None:
        from django.contrib.auth.models import User
        from django.db import connection

        from core.errors import DomainError
        from payments.models import Payment, PaymentStatus, RefundReason, RefundStatus
        from payments.services.refunds.staff import refund_create

        if self._stopping.wait(delay):
            return
        figures = self.refunds
        paid = Payment.objects.filter(status=PaymentStatus.SUCCEEDED, provider_payment_id__isnull=False)
        try:
            # At the start of the first period nothing is paid yet: staff wait for the renewals.
            while (
                payment := _retrying(
                    lambda: paid.select_related("subscription__account").order_by("?").first()
                )
            ) is None:
                if self._stopping.wait(1):
                    return
            staff = _retrying(lambda: User.objects.get(username=STAFF_USERNAME))
            key = uuid.uuid4()
            if full:
                with self._lock:  # before the refund: its viewer loses access as it goes through
                    figures.refunded_user_ids.add(payment.subscription.account.user_id)
            for _ in range(REFUND_SUBMISSIONS):
                with self._lock:
                    figures.submissions += 1
                try:
                    # The same form submitted again (same key) when the first try got no answer.
                    refund = _retrying(
                        lambda: refund_create(
                            payment=payment,
                            amount=payment.amount if full else payment.amount // 4,
                            reason=RefundReason.REQUESTED_BY_CUSTOMER,
                            comment="bench/soak",
                            created_by=staff,
                            request_key=key,
                        )
                    )
                except DomainError as exc:  # refunded meanwhile by another staff member
                    with self._lock:
                        figures.refused[exc.code] += 1
                    return
                if refund.status != RefundStatus.PENDING or refund.provider_refund_id:
                    break
            with self._lock:
                figures.refund_ids.append(str(refund.pk))
                if full:
                    figures.full += 1
                else:
                    figures.partial += 1
        finally:
            connection.close()

    # --- the end --------------------------------------------------------------------------

    def jobs_left(self) -> int:
        """Return how many viewers and refunds are still waiting or under way."""
        return sum(1 for job in self._jobs if not job.done())

    def stop(self) -> list[str]:
        """Stop polling, let the viewers and refunds under way finish; return how any of them broke.

        A job that raised is a fault of the soak itself (or of the machine), not of the service:
        the report names it, so a quiet run is never taken for a clean one.
        """
        self._stopping.set()
        for poller in self._pollers:
            poller.join(timeout=REQUEST_TIMEOUT_SECONDS)
        self._pool.shutdown(wait=True)
        return [
            f"a viewer or refund of the soak broke: {job.exception()!r}"
            for job in self._jobs
            if job.exception()
        ]


STAFF_USERNAME = "soak-staff"
# The soak's own database connections share PostgreSQL with every process of the deployment (and,
# on a shared machine, other runs): one refused now is tried again, as a staff member would.
OWN_CONNECTION_TRIES = 10


def _retrying(call: Callable[[], T]) -> T:
    """Return `call()`, trying again a few times when the soak's own database connection fails."""
    from django.db import OperationalError, connection

    for attempt in range(OWN_CONNECTION_TRIES):
        try:
            return call()
        except OperationalError:
            connection.close()
            if attempt == OWN_CONNECTION_TRIES - 1:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


class WorkerKiller:
    """SIGKILL one worker every `every` seconds (at most `limit` times, 0: no limit), replacing it."""

    def __init__(self, crew: WorkerCrew, *, every: float, limit: int, seed: int) -> None:
        self.crew = crew
        self.every = every
        self.limit = limit
        self.killed: list[str] = []
        self._random = random.Random(seed)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-worker-killer", daemon=True)
        self._error: BaseException | None = None
        if every > 0:
            self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self.every):
                if self.limit and len(self.killed) >= self.limit:
                    return
                self.killed.append(self.crew.kill_one(self._random))
        except BaseException as exc:  # surfaced by stop(): a replacement that would not start
            self._error = exc

    def stop(self) -> None:
        """Stop killing; raise what went wrong while replacing a worker, if anything did."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._error is not None:
            raise RuntimeError("a killed worker's replacement did not start") from self._error
