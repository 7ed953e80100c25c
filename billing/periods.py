"""Billing-period arithmetic on calendar months.

Every period boundary is computed from the subscription's billing anchor, never from the
previous boundary, so a subscription that starts on 31 January renews on 29 February,
31 March, 30 April, ... instead of drifting to the 29th for ever. Years are twelve months.
"""

import calendar
from datetime import UTC, datetime

MONTHS_PER_UNIT = {"month": 1, "year": 12}


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("billing periods need timezone-aware datetimes")
    return moment.astimezone(UTC)


def add_months(anchor: datetime, months: int) -> datetime:
    """Return `anchor` moved by `months` calendar months, clamped to the month's last day."""
    anchor = _require_aware(anchor)
    month_index = anchor.year * 12 + (anchor.month - 1) + months
    year, month_zero_based = divmod(month_index, 12)
    month = month_zero_based + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_length_in_months(unit: str, count: int) -> int:
    """Return the length of one billing period in months (a year is twelve)."""
    if count < 1:
        raise ValueError("a billing period lasts at least one unit")
    return MONTHS_PER_UNIT[unit] * count


def months_between(anchor: datetime, boundary: datetime) -> int:
    """Return how many whole calendar months separate an anchor from one of its boundaries."""
    anchor, boundary = _require_aware(anchor), _require_aware(boundary)
    return (boundary.year - anchor.year) * 12 + (boundary.month - anchor.month)


def next_period_end(*, anchor: datetime, period_end: datetime, unit: str, count: int) -> datetime:
    """Return the end of the period that starts at `period_end`, counted from `anchor`.

    `period_end` must be a boundary of `anchor` (the anchor itself or a value this module
    returned for it); the result is exactly one tariff period later, without drift.
    """
    elapsed = months_between(anchor, period_end)
    return add_months(anchor, elapsed + period_length_in_months(unit, count))
