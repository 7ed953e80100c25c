"""Day totals: keeping the rows the reports read few.

The database adds a `DayTotal` row for every insert of postings (migration 0005), so a busy
day leaves many rows for the same account, day and kind. `day_totals_compact` merges them into
one, so a trial balance over years of postings sums about one row per account, kind and day.

Merging never loses or doubles a posting, whatever is posted meanwhile: the rows are deleted
and their sum inserted in one transaction, and the sum is taken of exactly the rows the DELETE
removed (its RETURNING), not of a separate read. A row committed after the DELETE began stays
as it is, to be merged by the next run; a reader sees either the rows or their sum.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.db import connection, transaction

from ledger.models import DayTotal

_TABLE = DayTotal._meta.db_table


@dataclass(frozen=True)
class Compaction:
    """What one run merged: `removed` rows became `merged` rows."""

    removed: int
    merged: int


def day_totals_compact() -> Compaction:
    """Merge the rows of each (account, day, kind) that has more than one into one row."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {_TABLE} WHERE (account_id, day, kind) IN (
                SELECT account_id, day, kind FROM {_TABLE}
                GROUP BY account_id, day, kind HAVING COUNT(*) > 1
            )
            RETURNING account_id, currency, day, kind, amount
            """  # noqa: S608 - the table name is the model's
        )
        removed = cursor.fetchall()
        sums: dict[tuple[int, str, date, str], int] = defaultdict(int)
        for account_id, currency, day, kind, amount in removed:
            # SQLite returns the day as text.
            sums[account_id, currency, _as_date(day), kind] += amount
        DayTotal.objects.bulk_create(
            DayTotal(account_id=account_id, currency=currency, day=day, kind=kind, amount=amount)
            for (account_id, currency, day, kind), amount in sorted(sums.items())
        )
    return Compaction(removed=len(removed), merged=len(sums))


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)
