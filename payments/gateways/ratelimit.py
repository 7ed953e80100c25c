"""Outgoing rate limits: keep calls to a provider under a rate that every process shares.

Stripe answers 429 once an account sends more than its rate (25 requests/s per endpoint by
default); a fleet of workers renewing thousands of subscriptions at once would get there in a
second. So each call takes a token first, and a caller that finds none waits its turn.

The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one
timestamp): the bucket stores the "theoretical arrival time" `tat` of the next free slot,
and taking a token moves it on by one emission interval (1/rate). A caller is given the
slot at `tat - tolerance` (the tolerance lets `burst` calls through back to back) and sleeps
until then. Slots are reserved first come, first served, so a waiting caller is never
overtaken, and with `burst=1` no two slots are closer than one interval: any one-second
window holds at most `rate` slots. A slot is when a call may start; a thread the machine
wakes late starts late, so the provider may count a request or two more in some second than
the slots hold (bench/ratelimit and bench/renewals measure how many). A caller whose slot
would be more than `max_wait` away reserves nothing and gets `RateLimited` at once instead of
sleeping only to fail. Each reservation returns its `Grant`: the slot's instant on the
limiter's own clock and the wait until it, so what the limiter decided can be checked apart
from when callers ran.

`RedisRateLimiter` keeps the bucket in Redis and takes a token with one Lua script, which
Redis runs atomically on its own clock, so every worker process and host shares one limit
(one key per limit name). `LocalRateLimiter` keeps it in this process: the fallback when no
Redis is configured (`make run`) and while Redis cannot be reached; each process then has
the whole rate to itself.

Each wait and each refusal is counted for the metrics (`billing_ratelimit_*`, by provider:
the part of the limit's name before the colon, see `limit_name`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from core.metrics import record_ratelimit_refusal, record_ratelimit_wait
from payments.gateways.errors import RateLimited

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit:"
# The code of the RateLimited error raised here, apart from Stripe's own 429 ("rate_limit").
WAIT_TOO_LONG = "outgoing_rate_limit"
# After Redis fails, the local bucket is used this long before Redis is tried again, so an
# outage costs one connection timeout now and then rather than one per call.
REDIS_RETRY_AFTER_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 1.0

# KEYS[1]: the limit's key. ARGV: the emission interval, the burst tolerance and the longest
# wait the caller accepts, in microseconds. Returns {1, wait, slot} with the slot reserved at
# `slot` (Redis time), `wait` microseconds from now, or {0, wait, slot} with nothing reserved
# when the caller would wait longer.
# Time is Redis's own, so the hosts' clocks never matter; the key expires once the bucket is
# full again. The timestamp is written with %.0f: tostring() would keep only 14 digits.
GCRA_SCRIPT = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
    tat = now
end
local wait = tat - tolerance - now
if wait < 0 then
    wait = 0
end
local slot = now + math.floor(wait)
if wait > max_wait then
    return {0, math.floor(wait), slot}
end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
return {1, math.floor(wait), slot}
"""


@dataclass(frozen=True)
class Grant:
    """A reserved slot: when its call may start and how long the caller waits for it.

    `at` is in seconds on the limiter's own clock (Redis's for the shared bucket, the
    `clock` given for a local one), the clock the limiter decided on.
    """

    at: float
    wait: float


class RateLimiter(Protocol):
    """Something that makes its caller wait for its turn to call the provider."""

    def acquire(self) -> Grant:
        """Take a token, sleeping until it is due; raise RateLimited if it is too far off."""
        ...


def _check_limits(rate: float, burst: int, max_wait: float) -> None:
    if rate <= 0:
        raise ValueError("rate must be positive")
    if burst < 1:
        raise ValueError("burst must be at least 1")
    if max_wait < 0:
        raise ValueError("max_wait must not be negative")


def _take_turn(name: str, reserve: Callable[[], Grant], sleep: Callable[[float], None]) -> Grant:
    """Reserve a slot with `reserve` and sleep until it, counting the wait or the refusal."""
    provider = name.split(":", 1)[0]
    try:
        grant = reserve()
    except RateLimited:
        record_ratelimit_refusal(provider=provider)
        raise
    if grant.wait > 0:
        record_ratelimit_wait(provider=provider, seconds=grant.wait)
        sleep(grant.wait)
    return grant


def _too_long(name: str, wait: float, max_wait: float) -> RateLimited:
    return RateLimited(
        f"outgoing rate limit {name!r}: the next free slot is {wait:.2f}s away, "
        f"more than the {max_wait:.2f}s a call may wait",
        code=WAIT_TOO_LONG,
    )


class LocalRateLimiter:
    """A GCRA bucket in this process, shared by its threads."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int = 1,
        max_wait: float = 10.0,
        name: str = "local",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check_limits(rate, burst, max_wait)
        self.name = name
        self.rate = rate
        self.burst = burst
        self.max_wait = max_wait
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat: float | None = None

    def reserve(self) -> Grant:
        """Reserve the next slot and return it.

        Raise RateLimited, reserving nothing, when it is more than `max_wait` away.
        """
        with self._lock:
            now = self._clock()
            tat = now if self._tat is None else max(self._tat, now)
            wait = max(tat - self._tolerance - now, 0.0)
            if wait > self.max_wait:
                raise _too_long(self.name, wait, self.max_wait)
            self._tat = tat + self._interval
            return Grant(at=now + wait, wait=wait)

    def acquire(self) -> Grant:
        """Take a token, sleeping until it is due; raise RateLimited if it is too far off."""
        return _take_turn(self.name, self.reserve, self._sleep)


class RedisRateLimiter:
    """A GCRA bucket in Redis, shared by every process that uses the same name and Redis.

    While Redis cannot be reached, calls take tokens from a local bucket at the same rate
    instead: payments go on at no more than the rate per process, rather than stopping.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        name: str,
        rate: float,
        burst: int = 1,
        max_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_limits(rate, burst, max_wait)
        self.name = name
        self.key = KEY_PREFIX + name
        self.rate = rate
        self.burst = burst
        self.max_wait = max_wait
        interval_us = 1_000_000 / rate
        self._args = [
            f"{interval_us:.3f}",
            f"{(burst - 1) * interval_us:.3f}",
            f"{max_wait * 1_000_000:.0f}",
        ]
        self._client = client
        self._script = client.register_script(GCRA_SCRIPT)
        self._sleep = sleep
        self._clock = clock
        self._fallback = LocalRateLimiter(
            rate=rate, burst=burst, max_wait=max_wait, name=name, clock=clock, sleep=sleep
        )
        self._redis_down_until = 0.0

    def reserve(self) -> Grant:
        """Reserve the next slot and return it, on Redis's clock (the local one while Redis is down).

        Raise RateLimited, reserving nothing, when it is more than `max_wait` away.
        """
        import redis

        if self._clock() < self._redis_down_until:
            return self._fallback.reserve()
        try:
            allowed, wait_us, slot_us = self._script(keys=[self.key], args=self._args)
        except redis.RedisError as exc:
            self._redis_down_until = self._clock() + REDIS_RETRY_AFTER_SECONDS
            logger.warning(
                "rate limit %r: Redis failed (%s); limiting in this process for %.0fs",
                self.name,
                exc,
                REDIS_RETRY_AFTER_SECONDS,
            )
            return self._fallback.reserve()
        wait = int(wait_us) / 1_000_000
        if not int(allowed):
            raise _too_long(self.name, wait, self.max_wait)
        return Grant(at=int(slot_us) / 1_000_000, wait=wait)

    def acquire(self) -> Grant:
        """Take a token, sleeping until it is due; raise RateLimited if it is too far off."""
        return _take_turn(self.name, self.reserve, self._sleep)

    def reset(self) -> None:
        """Forget the bucket's state, as if no call had been made for a while."""
        self._client.delete(self.key)


def limit_name(provider: str, api_key: str) -> str:
    """Return the limit name of one provider account, without putting its key in Redis."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    return f"{provider}:{digest}"


def build_rate_limiter(
    *, name: str, rate: float, redis_url: str = "", burst: int = 1, max_wait: float = 10.0
) -> RateLimiter | None:
    """Return the limiter for `rate` calls per second (None when the rate is 0: no limit).

    With a Redis URL the limit is shared by every process that uses it; without one, each
    process has its own.
    """
    if rate == 0:
        return None
    if not redis_url:
        return LocalRateLimiter(rate=rate, burst=burst, max_wait=max_wait, name=name)
    import redis

    client = redis.Redis.from_url(
        redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
    return RedisRateLimiter(client=client, name=name, rate=rate, burst=burst, max_wait=max_wait)
