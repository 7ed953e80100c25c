"""The outgoing rate limit: real Redis, real threads and processes, counted in 1-second windows.

Timings on a shared machine are noisy, so the tests count calls in sliding windows and use
the limiter's own promises as bounds: its slots are `1/rate` apart after a burst, so no
1-second window holds more than `rate + burst - 1` of them, and `n` calls take at least
`(n - burst) / rate` seconds. A call is sent when its thread wakes up, which on a loaded
machine can be tens of milliseconds after its slot, landing it in the next slot's window:
`LATE_WAKEUPS` calls of slack cover that. Without a shared limit the same callers would put
several times the rate in one window.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from payments.gateways import get_gateway
from payments.gateways.base import CustomerRequest, RateLimited
from payments.gateways.ratelimit import (
    WAIT_TOO_LONG,
    LocalRateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
)
from payments.gateways.stripe import StripeGateway

RATE = 25
# Calls a window may hold beyond the limiter's slots because their thread woke up late
# (three slots at 25/s: up to 120 ms of scheduling delay on a shared two-core machine).
LATE_WAKEUPS = 3


def most_per_window(rate: float, burst: int = 1) -> float:
    """Return the most calls any 1-second window may hold: the limiter's slots plus late wake-ups."""
    return rate + burst - 1 + LATE_WAKEUPS


def busiest_window(times: list[float], width: float = 1.0) -> int:
    """Return the most calls that fall in any window [t, t + width) starting at a call."""
    ordered = sorted(times)
    busiest, end = 0, 0
    for start, at in enumerate(ordered):
        while end < len(ordered) and ordered[end] < at + width:
            end += 1
        busiest = max(busiest, end - start)
    return busiest


def test_busiest_window_counts_calls_in_half_open_windows():
    assert busiest_window([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert busiest_window([i / 4 for i in range(12)]) == 4


@pytest.fixture
def redis_url(settings) -> str:
    url: str = settings.STRIPE_RATE_LIMIT_REDIS_URL
    if not url:
        pytest.skip("STRIPE_RATE_LIMIT_REDIS_URL is empty: no Redis to share a limit through")
    return url


@pytest.fixture
def limit_name(redis_url: str) -> Iterator[str]:
    """Return a limit name of this test alone, and delete its key afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(redis_url).delete(f"ratelimit:{name}")


def redis_limiter(
    redis_url: str, name: str, *, rate: float, burst: int = 1, max_wait: float = 10.0
) -> RedisRateLimiter:
    limiter = build_rate_limiter(name=name, rate=rate, redis_url=redis_url, burst=burst, max_wait=max_wait)
    assert isinstance(limiter, RedisRateLimiter)
    return limiter


# --- across threads and processes, through Redis --------------------------------------------


def test_threads_calling_stripe_share_the_rate_and_reach_it(stripe_sandbox, settings, redis_url):
    # A key of this test alone: its bucket is shared with nobody else using this Redis.
    settings.STRIPE_SECRET_KEY = f"sk_test_ratelimit_{uuid.uuid4().hex}"
    settings.STRIPE_RATE_LIMIT_PER_SECOND = RATE
    settings.STRIPE_RATE_LIMIT_REDIS_URL = redis_url
    settings.STRIPE_MAX_RETRIES = 0
    gateway = get_gateway()
    calls = 100

    def create(number: int) -> str:
        return gateway.create_customer(
            CustomerRequest(account_ref=f"acct-{number}", email="", idempotency_key=f"customer:{number}")
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        customers = list(pool.map(create, range(calls)))
    elapsed = time.monotonic() - started

    arrivals = [r["time"] for r in stripe_sandbox.requests(method="POST", path="/v1/customers")]
    assert len(set(customers)) == len(arrivals) == calls
    # Never above the rate, measured where Stripe would count: on arrival at the server.
    assert busiest_window(arrivals) <= most_per_window(RATE)
    assert elapsed >= (calls - 1) / RATE - 0.05
    # Calls are fast here, so the limit, not the callers, sets the pace: it is reached.
    assert busiest_window(arrivals) >= 0.8 * RATE
    assert (calls - 1) / (max(arrivals) - min(arrivals)) >= 0.8 * RATE


# A process of its own: it waits until all have started, takes its tokens and prints when
# each was granted. Only the limiter is imported, so the processes start quickly.
TAKE_TOKENS = """
import json, sys, time
import redis
from payments.gateways.ratelimit import build_rate_limiter

url, name, rate, count, processes = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
limiter = build_rate_limiter(name=name, rate=rate, redis_url=url)
ready = redis.Redis.from_url(url)
ready.incr(name + ":ready")
deadline = time.monotonic() + 60
while int(ready.get(name + ":ready")) < processes and time.monotonic() < deadline:
    time.sleep(0.005)
granted = []
for _ in range(count):
    limiter.acquire()
    granted.append(time.time())
print(json.dumps(granted))
"""


def test_processes_sharing_a_redis_limit_stay_under_it_together(settings, redis_url, limit_name):
    rate, processes, each = RATE, 3, 20
    command = [sys.executable, "-c", TAKE_TOKENS, redis_url, limit_name, str(rate), str(each), str(processes)]
    workers = [
        subprocess.Popen(command, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True)  # noqa: S603
        for _ in range(processes)
    ]
    try:
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
        redis.Redis.from_url(redis_url).delete(f"{limit_name}:ready")
    assert all(worker.returncode == 0 for worker in workers)
    granted = [at for output in outputs for at in json.loads(output)]

    assert len(granted) == processes * each
    assert busiest_window(granted) <= most_per_window(rate)
    assert max(granted) - min(granted) >= (len(granted) - 1) / rate - 0.05
    assert busiest_window(granted) >= 0.8 * rate


def test_a_burst_lets_that_many_calls_through_at_once(redis_url, limit_name):
    limiter = redis_limiter(redis_url, limit_name, rate=1, burst=3, max_wait=5)

    waits = [limiter.reserve() for _ in range(4)]

    assert waits[:3] == [0, 0, 0]
    assert 0.9 <= waits[3] <= 1.0


def test_a_call_that_would_wait_too_long_is_refused_at_once_and_takes_no_token(redis_url, limit_name):
    limiter = redis_limiter(redis_url, limit_name, rate=2, max_wait=0.6)
    assert limiter.reserve() == 0
    assert 0.4 <= limiter.reserve() <= 0.5

    started = time.monotonic()
    with pytest.raises(RateLimited) as refused:
        limiter.acquire()  # its slot would be ~1 s away

    assert time.monotonic() - started < 0.5
    assert refused.value.code == WAIT_TOO_LONG
    assert refused.value.retryable
    # Had the refused call reserved a slot, the next free one would still be ~1 s away.
    time.sleep(0.5)
    assert limiter.reserve() <= 0.6


def test_the_bucket_is_forgotten_once_it_is_full_again(redis_url, limit_name):
    limiter = redis_limiter(redis_url, limit_name, rate=10)
    limiter.reserve()

    ttl_ms = redis.Redis.from_url(redis_url).pttl(limiter.key)

    assert 0 < ttl_ms <= 1100


def test_when_redis_is_down_each_process_limits_itself(caplog):
    # Nothing listens on port 1: every Redis call fails at once.
    limiter = redis_limiter("redis://127.0.0.1:1/0", "unreachable", rate=10)

    waits = [limiter.reserve() for _ in range(3)]

    assert waits[0] == 0
    assert 0.05 <= waits[1] <= 0.1 and 0.15 <= waits[2] <= 0.2
    assert "limiting in this process" in caplog.text


# --- in one process ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_local_limiter_spaces_calls_one_interval_apart_after_the_burst():
    clock = FakeClock()
    limiter = LocalRateLimiter(rate=RATE, burst=2, max_wait=10, clock=clock, sleep=clock.sleep)

    waits = [limiter.reserve() for _ in range(5)]
    clock.now += 1.0  # a quiet second fills the bucket again
    after_rest = limiter.reserve()

    assert waits == pytest.approx([0, 0, 0.04, 0.08, 0.12])
    assert after_rest == 0


def test_local_limiter_refuses_a_wait_beyond_the_bound():
    clock = FakeClock()
    limiter = LocalRateLimiter(rate=1, max_wait=2, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()

    with pytest.raises(RateLimited):
        limiter.acquire()
    assert clock.slept == pytest.approx([1, 2])


def test_local_limiter_keeps_threads_of_one_process_under_the_rate() -> None:
    rate, threads, each = RATE, 4, 8
    limiter = LocalRateLimiter(rate=rate, max_wait=5)
    granted: list[float] = []
    lock = threading.Lock()

    def take(_: int) -> None:
        for _ in range(each):
            limiter.acquire()
            with lock:
                granted.append(time.monotonic())

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(take, range(threads)))

    assert busiest_window(granted) <= most_per_window(rate)
    assert max(granted) - min(granted) >= (threads * each - 1) / rate - 0.05


# --- the gateway's wiring ---------------------------------------------------------------------


class CountingLimiter:
    def __init__(self) -> None:
        self.taken = 0

    def acquire(self) -> None:
        self.taken += 1


def test_every_request_the_gateway_sends_takes_a_token_retries_too(stripe_sandbox, settings):
    limiter = CountingLimiter()
    gateway = StripeGateway(
        "sk_test_ratelimit",
        "whsec_unused",
        api_base=settings.STRIPE_API_BASE,
        max_retries=1,
        retry_base_delay=0.001,
        limiter=limiter,
    )
    stripe_sandbox.post("/faults", {"mode": "error", "path": "/v1/customers", "count": 1})

    gateway.create_customer(CustomerRequest(account_ref="acct-1", email="", idempotency_key="customer:1"))

    assert len(stripe_sandbox.requests(path="/v1/customers")) == 2
    assert limiter.taken == 2


def test_a_refused_token_reaches_the_caller_as_rate_limited(stripe_sandbox, settings):
    class Refusing:
        def acquire(self) -> None:
            raise RateLimited("no slot", code=WAIT_TOO_LONG)

    gateway = StripeGateway(
        "sk_test_ratelimit",
        "whsec_unused",
        api_base=settings.STRIPE_API_BASE,
        limiter=Refusing(),
        max_retries=0,
    )

    with pytest.raises(RateLimited):
        gateway.retrieve_refund("re_1")
    assert stripe_sandbox.requests() == []


@pytest.fixture
def limit_settings(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_ratelimit_wiring"
    settings.STRIPE_API_BASE = ""
    settings.BILLING_PRODUCTION = False
    return settings


def test_get_gateway_limits_calls_through_redis_when_a_url_is_set(limit_settings):
    limit_settings.STRIPE_RATE_LIMIT_PER_SECOND = 25
    limit_settings.STRIPE_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:6379/0"

    limiter = get_gateway()._limiter

    assert isinstance(limiter, RedisRateLimiter)
    assert (limiter.rate, limiter.burst, limiter.max_wait) == (25, 1, limit_settings.STRIPE_TIMEOUT_SECONDS)
    assert "sk_test" not in limiter.key


def test_get_gateway_limits_each_process_alone_without_redis(limit_settings):
    limit_settings.STRIPE_RATE_LIMIT_PER_SECOND = 25
    limit_settings.STRIPE_RATE_LIMIT_REDIS_URL = ""

    assert isinstance(get_gateway()._limiter, LocalRateLimiter)


def test_get_gateway_sends_freely_when_the_rate_is_zero(limit_settings):
    limit_settings.STRIPE_RATE_LIMIT_PER_SECOND = 0

    assert get_gateway()._limiter is None


def test_get_gateway_refuses_a_negative_rate(limit_settings):
    limit_settings.STRIPE_RATE_LIMIT_PER_SECOND = -1

    with pytest.raises(ImproperlyConfigured):
        get_gateway()
