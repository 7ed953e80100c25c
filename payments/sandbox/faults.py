"""Injected faults: errors, rate limits, time-outs and latency for chosen requests.

A fault matches a method (or any) and a path prefix, for its next `count`
requests or until cleared; with a `chance` below 1 it strikes only that share of them, at
random (a soak's "5% of answers fail"). Latency faults add up and let the request go on; the
first matching error, rate limit or time-out decides the answer. With
`when="after"` the request is carried out (and its idempotent result kept) before
the client is given the error or the silence: the "Stripe did it but the answer
was lost" case retries with the same idempotency key must survive.
"""

import itertools
import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

MODES = ("error", "rate_limit", "timeout", "latency")


@dataclass
class Fault:
    """One injected fault rule."""

    id: str
    mode: str
    path: str = "/v1/"
    method: str | None = None
    count: int | None = None  # requests left; None until cleared
    status: int = 500  # for mode=error
    latency_ms: int = 0  # for mode=latency
    hold_seconds: float | None = None  # for mode=timeout; None uses the configured default
    when: str = "before"  # before or after the request is carried out
    chance: float = 1.0  # the share of matching requests it strikes, drawn per request
    hits: int = 0

    def as_json(self) -> dict[str, Any]:
        """Return the rule as the control API shows it."""
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """What the faults say about one request."""

    latency_ms: int = 0
    fault: Fault | None = None  # the error, rate limit or time-out to apply, if any


class FaultBook:
    """The active fault rules, consumed as requests match them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        # Which requests a `chance` fault strikes is no secret: the ordinary generator will do.
        self._random = random.Random()  # noqa: S311

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a rule from the control API's JSON, refusing malformed ones with ValueError."""
        known = {"mode", "path", "method", "count", "status", "latency_ms", "hold_seconds", "when", "chance"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        mode = spec.get("mode")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        path = spec.get("path", "/v1/")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("path must be a path prefix starting with /")
        method = spec.get("method")
        if method is not None and (not isinstance(method, str) or not method.isalpha()):
            raise ValueError("method must be an HTTP method or null")
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise ValueError("count must be a positive integer or null")
        status = spec.get("status", 500)
        if not isinstance(status, int) or not 500 <= status <= 599:
            raise ValueError("status must be a 5xx code")
        latency_ms = spec.get("latency_ms", 0)
        if mode == "latency" and (not isinstance(latency_ms, int) or latency_ms <= 0):
            raise ValueError("a latency fault needs latency_ms > 0")
        hold = spec.get("hold_seconds")
        if hold is not None and (not isinstance(hold, int | float) or hold <= 0):
            raise ValueError("hold_seconds must be a positive number")
        when = spec.get("when", "before")
        if when not in ("before", "after") or (when == "after" and mode not in ("error", "timeout")):
            raise ValueError("when must be before, or after for error and timeout faults")
        chance = spec.get("chance", 1.0)
        if isinstance(chance, bool) or not isinstance(chance, int | float) or not 0 < chance <= 1:
            raise ValueError("chance must be a number above 0 and at most 1")
        with self._lock:
            fault = Fault(
                id=f"fault_{next(self._ids)}",
                mode=mode,
                path=path,
                method=method.upper() if method else None,
                count=count,
                status=status,
                latency_ms=latency_ms if mode == "latency" else 0,
                hold_seconds=hold,
                when=when,
                chance=float(chance),
            )
            self._faults.append(fault)
        return fault

    def decide(self, method: str, path: str) -> Decision:
        """Consume the rules matching this request and say what to do with it."""
        latency = 0
        chosen = None
        with self._lock:
            for fault in list(self._faults):
                if fault.method not in (None, method) or not path.startswith(fault.path):
                    continue
                if fault.mode != "latency" and chosen is not None:
                    continue
                if fault.chance < 1 and self._random.random() >= fault.chance:
                    continue  # spared this time: neither counted nor consumed
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                if fault.mode == "latency":
                    latency += fault.latency_ms
                else:
                    chosen = fault
        return Decision(latency_ms=latency, fault=chosen)

    def remove(self, fault_id: str) -> bool:
        """Clear one rule; return whether it existed."""
        with self._lock:
            before = len(self._faults)
            self._faults = [fault for fault in self._faults if fault.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        """Clear every rule."""
        with self._lock:
            self._faults.clear()

    def as_json(self) -> list[dict[str, Any]]:
        """Return the active rules."""
        with self._lock:
            return [fault.as_json() for fault in self._faults]


RATE_LIMIT_BODY = {
    "error": {
        "code": "rate_limit",
        "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
        "message": (
            "Request rate limit exceeded. You can learn more about rate limits here "
            "https://stripe.com/docs/rate-limits."
        ),
        "type": "invalid_request_error",
    }
}

SERVER_ERROR_BODY = {
    "error": {
        "message": "An unknown error occurred (injected by the billing service's Stripe sandbox).",
        "type": "api_error",
    }
}
