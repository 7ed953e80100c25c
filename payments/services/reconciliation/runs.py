"""Reconciliation runs and their lease: how every reconciliation job is run and recorded.

Each job is recorded as a `ReconciliationRun` with what it examined and what it fixed. A run is
not one transaction: every change a job makes goes through idempotent services, each in its own
short transaction, so no lock is held over a call to Stripe. Two runs of one kind never overlap:
a run first takes its kind's lease (`ReconciliationCursor`), and a run that finds it held is
recorded as skipped.
"""

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from payments.models import (
    ReconciliationCursor,
    ReconciliationRun,
    ReconciliationRunStatus,
)

logger = logging.getLogger(__name__)

# How long a run holds its kind's lease without showing signs of life; it is renewed after
# every item, so only a run that died (or hangs) loses it.
LEASE = timedelta(minutes=10)
# Entries kept in a run's `fixes`; `fixed` counts them all.
FIXES_KEPT = 1000


class LeaseLost(Exception):
    """Another run took this run's lease over, because this one stopped renewing it in time."""


def _execute(kind: str, work: Callable[[ReconciliationRun], None]) -> ReconciliationRun:
    run = ReconciliationRun.objects.create(kind=kind)
    if not _lease_take(run):
        run.status = ReconciliationRunStatus.SKIPPED
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
        return run
    try:
        work(run)
    except Exception as exc:
        logger.exception("reconciliation run %s (%s) failed", run.pk, kind)
        _note_error(run, f"{type(exc).__name__}: {exc}")
    finally:
        _lease_release(run)
    run.status = ReconciliationRunStatus.FAILED if run.error else ReconciliationRunStatus.OK
    run.finished_at = timezone.now()
    run.save()
    return run


def _lease_take(run: ReconciliationRun) -> bool:
    """Take the lease of the run's kind unless a live run holds it: one conditional UPDATE."""
    cursor, _ = ReconciliationCursor.objects.get_or_create(kind=run.kind)
    now = timezone.now()
    free = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    taken = ReconciliationCursor.objects.filter(free, kind=run.kind).update(
        locked_by=run, locked_until=now + LEASE
    )
    if taken and cursor.locked_by_id is not None:
        # Its holder stopped renewing the lease: it died (or hangs), so admin shows it failed.
        ReconciliationRun.objects.filter(
            pk=cursor.locked_by_id, status=ReconciliationRunStatus.RUNNING
        ).update(
            status=ReconciliationRunStatus.FAILED,
            finished_at=now,
            error="Stopped without finishing: its lease ran out.",
        )
    return taken == 1


def _lease_keep(run: ReconciliationRun) -> None:
    """Renew the run's lease and show its progress; raise LeaseLost if it is no longer held."""
    kept = ReconciliationCursor.objects.filter(kind=run.kind, locked_by=run).update(
        locked_until=timezone.now() + LEASE
    )
    if not kept:
        raise LeaseLost(f"another run took the {run.kind} lease over")
    ReconciliationRun.objects.filter(pk=run.pk).update(examined=run.examined, fixed=run.fixed)


def _lease_release(run: ReconciliationRun) -> None:
    ReconciliationCursor.objects.filter(kind=run.kind, locked_by=run).update(
        locked_by=None, locked_until=None
    )


def _note_fix(run: ReconciliationRun, fix: dict[str, Any]) -> None:
    run.fixed += 1
    if len(run.fixes) < FIXES_KEPT:
        run.fixes.append(fix)


def _note_error(run: ReconciliationRun, message: str) -> None:
    run.error = f"{run.error}\n{message}" if run.error else message
