"""Reconciliation runs and their lease: how every reconciliation job is run and recorded.

Each job runs for one provider at a time and is recorded as a `ReconciliationRun` of that
provider with what it examined and what it fixed. A run is not one transaction: every change a
job makes goes through idempotent services, each in its own short transaction, so no lock is
held over a call to the provider. Two runs of one kind and provider never overlap: a run first
takes the lease of its kind and provider (`ReconciliationCursor`), and a run that finds it held
is recorded as skipped. Runs of different providers go on side by side.
"""

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet

from core import clock
from payments.gateways import UnknownProvider, configured_providers, default_provider
from payments.models import (
    ReconciliationCursor,
    ReconciliationRun,
    ReconciliationRunStatus,
)

logger = logging.getLogger(__name__)

# How long a run holds its lease without showing signs of life; it is renewed after every
# item, so only a run that died (or hangs) loses it.
LEASE = timedelta(minutes=10)
# Entries kept in a run's `fixes`; `fixed` counts them all.
FIXES_KEPT = 1000


class LeaseLost(Exception):
    """Another run took this run's lease over, because this one stopped renewing it in time."""


def reconciliation_provider(provider: str | None) -> str:
    """Return the provider a job runs for: the one named (it must be configured), else the default."""
    name = provider or default_provider()
    if name not in configured_providers():
        raise UnknownProvider(f"{name!r} is not one of the payment providers")
    return name


def _execute(kind: str, provider: str, work: Callable[[ReconciliationRun], None]) -> ReconciliationRun:
    run = ReconciliationRun.objects.create(kind=kind, provider=provider)
    if not _lease_take(run):
        run.status = ReconciliationRunStatus.SKIPPED
        run.finished_at = clock.now()
        run.save(update_fields=["status", "finished_at"])
        return run
    try:
        work(run)
    except Exception as exc:
        logger.exception("reconciliation run %s (%s, %s) failed", run.pk, kind, provider)
        _note_error(run, f"{type(exc).__name__}: {exc}")
    finally:
        _lease_release(run)
    run.status = ReconciliationRunStatus.FAILED if run.error else ReconciliationRunStatus.OK
    run.finished_at = clock.now()
    run.save()
    return run


def _cursor_of(run: ReconciliationRun) -> QuerySet[ReconciliationCursor]:
    """Return the cursor of the run's kind and provider, as a queryset to update."""
    return ReconciliationCursor.objects.filter(kind=run.kind, provider=run.provider)


def _lease_take(run: ReconciliationRun) -> bool:
    """Take the lease of the run's kind and provider unless a live run holds it: one conditional UPDATE."""
    cursor, _ = ReconciliationCursor.objects.get_or_create(kind=run.kind, provider=run.provider)
    now = clock.now()
    free = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    taken = _cursor_of(run).filter(free).update(locked_by=run, locked_until=now + LEASE)
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
    kept = _cursor_of(run).filter(locked_by=run).update(locked_until=clock.now() + LEASE)
    if not kept:
        raise LeaseLost(f"another run took the {run.kind} lease of {run.provider} over")
    ReconciliationRun.objects.filter(pk=run.pk).update(examined=run.examined, fixed=run.fixed)


def _lease_release(run: ReconciliationRun) -> None:
    _cursor_of(run).filter(locked_by=run).update(locked_by=None, locked_until=None)


def _note_fix(run: ReconciliationRun, fix: dict[str, Any]) -> None:
    run.fixed += 1
    if len(run.fixes) < FIXES_KEPT:
        run.fixes.append(fix)


def _note_error(run: ReconciliationRun, message: str) -> None:
    run.error = f"{run.error}\n{message}" if run.error else message
