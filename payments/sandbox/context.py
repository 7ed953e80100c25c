"""The sandbox's run-time settings and the context every operation receives."""

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payments.sandbox.store import Store

# The API version the pinned stripe SDK (16.1.0) speaks; events carry it like Stripe's do.
DEFAULT_API_VERSION = "2026-10-28.endive"


@dataclass
class SandboxConfig:
    """Settings a test or developer may change while the sandbox runs (`/_sandbox/config`)."""

    public_url: str = ""
    api_version: str = DEFAULT_API_VERSION
    webhook_url: str | None = None
    webhook_secret: str = "whsec_sandbox"  # noqa: S105 - a test signing secret, not a credential
    webhooks_paused: bool = False
    # Exponential backoff of webhook retries: base * 2**(attempt-1), at most cap, in seconds.
    webhook_retry_base: float = 1.0
    webhook_retry_cap: float = 60.0
    webhook_max_attempts: int = 10
    webhook_timeout: float = 10.0
    # Stripe delivers an event more than once now and then, and not in the order they happened
    # (docs/sandbox.md): the share of events sent twice, and the longest random hold-back of
    # each delivery, which lets later events overtake earlier ones. Both off by default.
    webhook_duplicate_chance: float = 0.0
    webhook_delay_max: float = 0.0
    # Added to every API request, before any fault.
    latency_ms: int = 0
    # How long a `timeout` fault holds the connection before dropping it.
    timeout_hold_seconds: float = 30.0
    # Seconds added to the wall clock: lets tests reach a session's expires_at.
    clock_offset: float = 0.0
    # The billing clock's file (core/clock.py: {"offset_seconds": ...}), when the sandbox
    # follows it: `make run` moves the demo's time with `billing_advance`, and Stripe's
    # `created` stamps must move with it, or the reconciliation report would date every
    # renewal's charge a month before the payment it paid. Read, never written, here; set with
    # `--clock-file` or through the control API (a benchmark that starts the sandbox first).
    clock_file: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    _EDITABLE = (
        "webhook_url",
        "webhook_secret",
        "webhooks_paused",
        "webhook_retry_base",
        "webhook_retry_cap",
        "webhook_max_attempts",
        "webhook_timeout",
        "webhook_duplicate_chance",
        "webhook_delay_max",
        "latency_ms",
        "timeout_hold_seconds",
        "clock_offset",
        "clock_file",
    )

    def now(self) -> int:
        """Return the sandbox's current Unix time, as Stripe's `created` fields show it.

        It follows the billing clock when there is one (`clock_file`).
        """
        return int(time.time() + self.clock_offset + self.followed_offset())

    def wall_now(self) -> int:
        """Return the time a Checkout page's life is measured on: the wall clock (plus `clock_offset`).

        The billing service measures its pages' lives on real time too (a viewer needs real
        minutes to pay), whatever the billing clock says.
        """
        return int(time.time() + self.clock_offset)

    def followed_offset(self) -> float:
        """Return how far the followed billing clock runs ahead of real time (0 without one)."""
        if not self.clock_file:
            return 0.0
        try:
            seconds = json.loads(Path(self.clock_file).read_text())["offset_seconds"]
            return max(0.0, float(seconds))
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0  # no file: the billing clock was never moved, or was reset

    def snapshot(self) -> dict[str, Any]:
        """Return the settings as JSON."""
        names = ("public_url", "api_version", *self._EDITABLE)
        return {name: getattr(self, name) for name in names}

    def update(self, changes: dict[str, Any]) -> None:
        """Apply changes from the control API, refusing unknown names and wrong types."""
        with self.lock:
            for name, value in changes.items():
                if name not in self._EDITABLE:
                    raise ValueError(f"unknown setting: {name}")
                current = getattr(self, name)
                if name in ("webhook_url", "clock_file"):
                    if value is not None and not isinstance(value, str):
                        raise ValueError(f"{name} must be a string or null")
                elif name == "webhook_duplicate_chance" and (
                    isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
                ):
                    raise ValueError(f"{name} must be a number from 0 to 1")
                elif isinstance(current, bool):
                    if not isinstance(value, bool):
                        raise ValueError(f"{name} must be true or false")
                elif isinstance(current, int | float):
                    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                        raise ValueError(f"{name} must be a non-negative number")
                    value = type(current)(value)
                elif not isinstance(value, str):
                    raise ValueError(f"{name} must be a string")
                setattr(self, name, value)

    def copy(self) -> "SandboxConfig":
        """Return an independent copy (kept at start to restore on reset)."""
        return dataclasses.replace(self, lock=threading.Lock())

    def restore(self, other: "SandboxConfig") -> None:
        """Take every setting from `other`."""
        with self.lock:
            for item in dataclasses.fields(self):
                if item.name != "lock":
                    setattr(self, item.name, getattr(other, item.name))


@dataclass(frozen=True)
class Ctx:
    """What an operation needs: the state, the settings and the request it serves."""

    store: Store
    config: SandboxConfig
    wake_webhooks: Callable[[], None] = lambda: None
    request_id: str | None = None
    idempotency_key: str | None = None

    def now(self) -> int:
        """Return the sandbox's current Unix time (following the billing clock, if any)."""
        return self.config.now()

    def wall_now(self) -> int:
        """Return the time Checkout pages expire by (see SandboxConfig.wall_now)."""
        return self.config.wall_now()
