"""The outgoing rate limit: real Redis, real threads and processes, checked on the limiter's own clock.

Each token the limiter hands out is a `Grant`: the instant of its slot, on the clock the
limiter decided on (Redis's own for the shared bucket), and the wait until it. The tests assert
those decisions: no two slots closer than one interval after the burst, so `n` slots span at
least `(n - 1) / rate`; a refused call reserves nothing; the bucket expires once full again.
When a thread then wakes up and its request reaches the provider depends on how busy the
machine is, so no test looks at that or at how long it took: bench/ratelimit measures the pace
the limiter keeps with real callers.
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from payments.gateways import get_gateway
from payments.gateways.base import CustomerRequest
from payments.gateways.errors import RateLimited
from payments.gateways.ratelimit import (
    REDIS_RETRY_AFTER_SECONDS,
    WAIT_TOO_LONG,
    Grant,
    LocalRateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
)
from payments.gateways.stripe import StripeGateway

RATE = 25
# Redis keeps the bucket in whole microseconds.
MICROSECOND = 1e-6


def closest_gap(instants: list[float]) -> float:
    """Return the shortest time between two of the instants."""
    ordered = sorted(instants)
    return min(later - earlier for earlier, later in itertools.pairwise(ordered))


def test_closest_gap_is_the_shortest_distance_between_any_two_instants():
    assert closest_gap([3.0, 0.0, 1.0, 1.25]) == 0.25


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


def test_threads_calling_stripe_share_one_rate(stripe_sandbox, settings, redis_url, monkeypatch):
    # A key of this test alone: its bucket is shared with nobody else using this Redis.
    settings.STRIPE_SECRET_KEY = f"sk_test_ratelimit_{uuid.uuid4().hex}"
    settings.STRIPE_RATE_LIMIT_PER_SECOND = RATE
    settings.STRIPE_RATE_LIMIT_REDIS_URL = redis_url
    settings.STRIPE_MAX_RETRIES = 0
    gateway = get_gateway()
    limiter = gateway._limiter
    assert isinstance(limiter, RedisRateLimiter)
    grants: list[Grant] = []
    take_token = limiter.acquire

    def recording_acquire() -> Grant:
        grant = take_token()
        grants.append(grant)
        return grant

    monkeypatch.setattr(limiter, "acquire", recording_acquire)
    calls = 60

    def create(number: int) -> str:
        return gateway.create_customer(
            CustomerRequest(account_ref=f"acct-{number}", email="", idempotency_key=f"customer:{number}")
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        customers = list(pool.map(create, range(calls)))

    assert len(set(customers)) == len(stripe_sandbox.requests(method="POST", path="/v1/customers")) == calls
    # Every request took a token, and the eight threads were given slots from one sequence.
    slots = [grant.at for grant in grants]
    assert len(slots) == calls
    assert closest_gap(slots) >= 1 / RATE - MICROSECOND
    assert max(slots) - min(slots) >= (calls - 1) / RATE - MICROSECOND


# A process of its own: it waits until all have started, takes its tokens and prints the slots
# it was granted (Redis's clock). Only the limiter is imported, so the processes start quickly.
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
print(json.dumps([limiter.acquire().at for _ in range(count)]))
"""


def test_processes_sharing_a_redis_limit_are_given_slots_one_interval_apart(settings, redis_url, limit_name):
    rate, processes, each = RATE, 3, 15
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
    slots = [at for output in outputs for at in json.loads(output)]

    assert len(slots) == processes * each
    assert closest_gap(slots) >= 1 / rate - MICROSECOND
    assert max(slots) - min(slots) >= (len(slots) - 1) / rate - MICROSECOND


# Slow rates below leave seconds of room between the calls of one test and the limiter's
# decisions, so a machine too busy to run them promptly cannot change what is decided.


def test_a_burst_lets_that_many_calls_through_at_once(redis_url, limit_name):
    limiter = redis_limiter(redis_url, limit_name, rate=0.1, burst=3, max_wait=30)

    grants = [limiter.reserve() for _ in range(5)]

    assert [grant.wait for grant in grants[:3]] == [0, 0, 0]
    # After the burst, one slot every 10 s, counted from the first call's.
    assert grants[3].at == pytest.approx(grants[0].at + 10, abs=MICROSECOND)
    assert grants[4].at == pytest.approx(grants[0].at + 20, abs=MICROSECOND)
    assert grants[3].wait > 0 and grants[4].wait > 0


def test_a_call_that_would_wait_too_long_is_refused_at_once_and_takes_no_token(redis_url, limit_name):
    slept: list[float] = []
    limiter = RedisRateLimiter(
        client=redis.Redis.from_url(redis_url), name=limit_name, rate=0.1, max_wait=15, sleep=slept.append
    )
    first = limiter.reserve()
    second = limiter.reserve()
    assert second.at == pytest.approx(first.at + 10, abs=MICROSECOND)

    with pytest.raises(RateLimited) as refused:
        limiter.acquire()  # its slot would be 20 s after the first: more than 15 s away

    assert slept == []
    assert refused.value.code == WAIT_TOO_LONG
    assert refused.value.retryable
    # Had the refused call reserved its slot, the next one would be 30 s after the first.
    patient = redis_limiter(redis_url, limit_name, rate=0.1, max_wait=60)
    assert patient.reserve().at == pytest.approx(first.at + 20, abs=MICROSECOND)


def test_the_bucket_is_forgotten_a_second_after_it_is_full_again(redis_url, limit_name):
    limiter = redis_limiter(redis_url, limit_name, rate=0.1)
    grant = limiter.reserve()

    # Redis's clock and the key's time to live, read at one instant.
    with redis.Redis.from_url(redis_url).pipeline(transaction=True) as pipe:
        (seconds, microseconds), ttl_ms = pipe.time().pttl(limiter.key).execute()
    expires_at = seconds + microseconds / 1_000_000 + ttl_ms / 1000

    # The bucket is full again one interval (10 s) after the granted slot: the key lasts until
    # then, and is set to go a second later (give or take Redis's rounding to milliseconds).
    assert grant.at + 10 < expires_at <= grant.at + 10 + 1 + 0.005


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_when_redis_is_down_each_process_limits_itself(caplog):
    clock = FakeClock()
    # Nothing listens on port 1: every Redis call fails at once.
    limiter = RedisRateLimiter(
        client=redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1),
        name="unreachable",
        rate=10,
        clock=clock,
        sleep=clock.sleep,
    )

    with caplog.at_level(logging.WARNING, logger="payments.gateways.ratelimit"):
        grants = [limiter.acquire() for _ in range(3)]
        clock.now += REDIS_RETRY_AFTER_SECONDS
        after_retry = limiter.reserve()

    assert [grant.at for grant in grants] == pytest.approx([1000, 1000.1, 1000.2])
    assert clock.slept == pytest.approx([0.1, 0.2])
    assert after_retry.at == pytest.approx(1000 + REDIS_RETRY_AFTER_SECONDS)
    # Redis is tried once, then again only once the retry interval has passed.
    assert sum("limiting in this process" in record.getMessage() for record in caplog.records) == 2


# --- in one process ---------------------------------------------------------------------------


def test_local_limiter_spaces_calls_one_interval_apart_after_the_burst():
    clock = FakeClock()
    limiter = LocalRateLimiter(rate=RATE, burst=2, max_wait=10, clock=clock, sleep=clock.sleep)

    grants = [limiter.reserve() for _ in range(5)]
    clock.now += 1.0  # a quiet second fills the bucket again
    after_rest = limiter.reserve()

    assert [grant.wait for grant in grants] == pytest.approx([0, 0, 0.04, 0.08, 0.12])
    assert [grant.at for grant in grants] == pytest.approx([1000, 1000, 1000.04, 1000.08, 1000.12])
    assert after_rest == Grant(at=1001.0, wait=0)


def test_local_limiter_refuses_a_wait_beyond_the_bound():
    clock = FakeClock()
    limiter = LocalRateLimiter(rate=1, max_wait=2, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()

    with pytest.raises(RateLimited):
        limiter.acquire()
    assert clock.slept == pytest.approx([1, 2])


def test_local_limiter_gives_threads_of_one_process_slots_one_interval_apart() -> None:
    rate, threads, each = RATE, 4, 8
    limiter = LocalRateLimiter(rate=rate, max_wait=5)
    slots: list[float] = []
    lock = threading.Lock()

    def take(_: int) -> None:
        for _ in range(each):
            grant = limiter.acquire()
            with lock:
                slots.append(grant.at)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(take, range(threads)))

    assert len(slots) == threads * each
    assert closest_gap(slots) >= 1 / rate - 1e-9
    assert max(slots) - min(slots) >= (threads * each - 1) / rate - 1e-9


# --- the gateway's wiring ---------------------------------------------------------------------


class CountingLimiter:
    def __init__(self) -> None:
        self.taken = 0

    def acquire(self) -> Grant:
        self.taken += 1
        return Grant(at=float(self.taken), wait=0.0)


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
        def acquire(self) -> Grant:
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
