"""Celery tasks of notifications: thin adapters around the dispatchers, run by beat and nudged on commit.

Retries are not Celery's: each notice and delivery keeps its own next try in the database,
so nothing is lost when the broker or a worker goes away; the next run picks it up.
"""

from celery import shared_task

from core import clock
from ledger.services.retention import ledger_retention_run
from notifications.services.card_expiry import card_expiry_notices_record
from notifications.services.events import deliveries_dispatch
from notifications.services.notices import notices_dispatch, notices_record_upcoming
from notifications.services.retention import notifications_retention_run
from payments.services.retention import payments_retention_run


@shared_task
def dispatch_events() -> int:
    """POST the due event deliveries; return how many were delivered."""
    return deliveries_dispatch()


@shared_task
def dispatch_notices() -> int:
    """Send the due notices; return how many were sent."""
    return notices_dispatch()


@shared_task
def record_upcoming_notices() -> int:
    """Record the expiring-soon and trial-ending notices due by billing time."""
    return notices_record_upcoming(now=clock.now())


@shared_task
def record_card_expiry_notices() -> int:
    """Record the warnings of saved cards that expire before their subscription's next renewal."""
    return card_expiry_notices_record(now=clock.now())


@shared_task(acks_late=True)
def prune_old_records() -> dict[str, int]:
    """Delete the records of finished work older than the RETENTION_* settings, app by app, in batches.

    Here, in the top layer, because it reaches every app that keeps such records; each app
    decides what of its own may go (its services/retention.py).
    """
    now = clock.now()
    return {
        **payments_retention_run(now=now),
        **notifications_retention_run(now=now),
        **ledger_retention_run(now=now),
    }
