"""Pruning of old ledger checks: the stored results of `ledger_check`, never the books themselves.

Journal entries, postings, day totals and recognition plans are money and are never pruned.
A check run is the answer of one day's self-check; those older than
RETENTION_LEDGER_CHECK_RUNS_DAYS go, except the last one, which admin shows as the books' state.
"""

from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef

from core.retention import retention_cutoff, rows_delete_in_batches
from ledger.models import LedgerCheckRun


def ledger_check_runs_prune(*, before: datetime, batch_size: int) -> int:
    """Delete the check runs made before `before`, keeping the last one; return how many."""
    later = LedgerCheckRun.objects.filter(checked_at__gt=OuterRef("checked_at"))
    old = LedgerCheckRun.objects.filter(checked_at__lt=before).filter(Exists(later))
    return rows_delete_in_batches(rows=old, order_by="checked_at", batch_size=batch_size)


def ledger_retention_run(*, now: datetime) -> dict[str, int]:
    """Prune old ledger check runs by RETENTION_LEDGER_CHECK_RUNS_DAYS; return how many went."""
    before = retention_cutoff(now=now, days=settings.RETENTION_LEDGER_CHECK_RUNS_DAYS)
    if before is None:
        return {}
    return {
        "ledger_check_runs": ledger_check_runs_prune(before=before, batch_size=settings.RETENTION_BATCH_SIZE)
    }
