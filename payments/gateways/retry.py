"""Retry temporary gateway failures with exponential backoff, reusing the caller's idempotency key.

The retried callable is the same closure each time, so it sends the same parameters with the
same Idempotency-Key: the provider then either replays its stored answer or performs the
operation once. That is what makes retrying a charge safe.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from payments.gateways.errors import GatewayError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times, and how patiently, to repeat a call that failed temporarily."""

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry settings must not be negative")

    def delay(self, retry_number: int) -> float:
        """Return the pause before retry number `retry_number` (1-based)."""
        ceiling = min(self.base_delay * 2 ** (retry_number - 1), self.max_delay)
        # Jitter keeps a fleet of workers that failed together from retrying together; it is
        # not a secret, so the ordinary generator is right here.
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311

    def run(self, call: Callable[[], T], *, operation: str = "gateway call") -> T:
        """Return `call()`, retrying it while it raises a retryable GatewayError."""
        retries = 0
        while True:
            try:
                return call()
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
