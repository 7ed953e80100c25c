"""The billing clock: the one place the subscription engine asks what time it is.

It is the real UTC time plus an offset that the demo's `billing_advance` command (and tests)
can move forward, so renewals, dunning and expiry can be watched without waiting a month.
The offset lives in a small file shared by every local process (web, worker, beat); under
production settings there is no file and the clock is the real time.
"""

import json
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone


class ClockNotMovable(Exception):
    """The billing clock cannot be moved under these settings."""


def _offset_file() -> Path | None:
    if getattr(settings, "BILLING_PRODUCTION", False):
        return None
    path = getattr(settings, "BILLING_CLOCK_FILE", None)
    return Path(path) if path else None


def offset() -> timedelta:
    """Return how far the billing clock runs ahead of the real time."""
    path = _offset_file()
    if path is None:
        return timedelta(0)
    try:
        seconds = json.loads(path.read_text())["offset_seconds"]
    except (FileNotFoundError, ValueError, KeyError):
        return timedelta(0)
    return timedelta(seconds=float(seconds))


def now() -> datetime:
    """Return the current billing time, timezone-aware in UTC."""
    return timezone.now() + offset()


def advance(by: timedelta) -> datetime:
    """Move the billing clock forward and return the new billing time."""
    path = _offset_file()
    if path is None:
        raise ClockNotMovable("The billing clock runs on real time under these settings.")
    if by < timedelta(0):
        raise ClockNotMovable("The billing clock only moves forward.")
    new_offset = offset() + by
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"offset_seconds": new_offset.total_seconds()}))
    temporary.replace(path)  # atomic: a reader sees the old or the new offset, never half
    return timezone.now() + new_offset


def reset() -> None:
    """Put the billing clock back on real time (tests, a fresh demo)."""
    path = _offset_file()
    if path is not None:
        path.unlink(missing_ok=True)
