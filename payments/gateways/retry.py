"""Retry temporary gateway failures with exponential backoff, reusing the caller's idempotency key.

The retried callable is the same closure each time, so it sends the same parameters with the
same Idempotency-Key: the provider then either replays its stored answer or performs the
operation once. That is what makes retrying a charge safe.

Every request a gateway sends passes here, so here each one is counted for the metrics
(`billing_provider_calls_total`, docs/operations.md): by provider, operation and how it ended.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from core.metrics import record_provider_call
from payments.gateways.errors import AuthenticationRequired, CardDeclined, GatewayError, RateLimited

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times, and how patiently, to repeat a call that failed temporarily.

    `provider` names whose requests these are, in the metrics.
    """

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    provider: str = "unknown"

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry settings must not be negative")

    def delay(self, retry_number: int) -> float:
        """Return the pause before retry number `retry_number` (1-based)."""
        ceiling = min(self.base_delay * 2 ** (retry_number - 1), self.max_delay)
        # Jitter keeps a fleet of workers that failed together from retrying together; it is
        # not a secret, so the ordinary generator is right here.
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311

    def run(
        self,
        call: Callable[[], T],
        *,
        operation: str = "gateway call",
        wait_turn: Callable[[], object] | None = None,
    ) -> T:
        """Return `call()`, retrying it while it raises a retryable GatewayError.

        `wait_turn` is called before each attempt (the outgoing rate limit): its wait is not
        the provider's, so it is left out of the time measured, and a refusal it raises is
        retried like the provider's own.
        """
        retries = 0
        while True:
            try:
                if wait_turn is not None:
                    wait_turn()
                return self._attempt(call, operation)
            except GatewayError as exc:
                if not exc.retryable or retries >= self.max_retries:
                    raise
                retries += 1
                pause = self.delay(retries)
                logger.warning(
                    "%s failed with %s (%s); retry %d of %d in %.2fs",
                    operation,
                    type(exc).__name__,
                    exc.code,
                    retries,
                    self.max_retries,
                    pause,
                )
                self.sleep(pause)

    def _attempt(self, call: Callable[[], T], operation: str) -> T:
        """Return `call()`, counting the request and timing the provider's answer."""
        started = time.perf_counter()
        try:
            result = call()
        except Exception as exc:
            record_provider_call(
                provider=self.provider,
                operation=operation,
                outcome=call_outcome(exc),
                seconds=time.perf_counter() - started,
            )
            raise
        record_provider_call(
            provider=self.provider, operation=operation, outcome="ok", seconds=time.perf_counter() - started
        )
        return result


def call_outcome(exc: BaseException) -> str:
    """Return how a request that raised `exc` ended, as the metrics name it."""
    if isinstance(exc, CardDeclined):
        return "declined"
    if isinstance(exc, AuthenticationRequired):
        return "authentication_required"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if _timed_out(exc):
        return "timeout"
    if isinstance(exc, GatewayError) and exc.retryable:
        return "temporary_error"
    return "error"


def _timed_out(exc: BaseException) -> bool:
    """Return whether `exc` comes from a timeout, whatever HTTP library raised it.

    Providers map a timeout onto a temporary error like any network trouble; the exception
    it was raised from (socket's TimeoutError, requests' ReadTimeout) still says so.
    """
    seen: BaseException | None = exc
    for _ in range(5):  # the chain is short; a cycle must not loop forever
        if seen is None:
            return False
        if isinstance(seen, TimeoutError) or type(seen).__name__.endswith("Timeout"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
