"""Calendar days as the back office reads them: whole UTC days, in years the service can meet.

Reports, exports and the dashboard all cut time into UTC days; these few functions are the one
place that says how, and which days are sensible input at all.
"""

from datetime import UTC, date, datetime, time, timedelta

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from core import clock

# Days outside these are typos, and arithmetic on them (the day before, the day after, an hour
# either side) would overflow Python's dates: they are refused as bad input.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)


class DayOutOfRange(ValueError):
    """A day before FIRST_DAY or after LAST_DAY."""


def day_check(day: date) -> date:
    """Return `day` if it is one the back office works with; raise DayOutOfRange otherwise."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise DayOutOfRange(f"{day.isoformat()} is not between {FIRST_DAY} and {LAST_DAY}")
    return day


def day_parse(text: str) -> date:
    """Return the day written as YYYY-MM-DD; raise ValueError if it is not a sensible day."""
    return day_check(date.fromisoformat(text.strip()))


def day_argument(text: str) -> date:
    """Parse a command's day argument (YYYY-MM-DD), refusing anything else as a usage error."""
    try:
        return day_parse(text)
    except ValueError as exc:
        raise CommandError(_("Enter the day as YYYY-MM-DD.")) from exc


def utc_midnight(day: date) -> datetime:
    """Return the instant a UTC day starts."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def utc_day_range(day: date) -> tuple[datetime, datetime]:
    """Return a UTC day as the half-open range [its midnight, the next midnight)."""
    start = utc_midnight(day)
    return start, start + timedelta(days=1)


def utc_yesterday() -> date:
    """Return yesterday's UTC date: the last day that is over everywhere, the providers included."""
    return clock.now().astimezone(UTC).date() - timedelta(days=1)
