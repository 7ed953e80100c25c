"""Queue a task after a commit as a shortcut that may fail without harm: the broker may be down.

Whatever is queued this way has its committed rows to fall back on, which a scheduled job
handles anyway (a dispatcher beat runs every few seconds, the reconciliation of stored provider
events). So queueing neither retries nor waits (a commit or a request must not hang on a
broker outage) and never raises into the caller; it logs a warning instead.
"""

import logging
from typing import Any

from celery.app.task import Task
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)
NUDGE_INTERVAL_SECONDS = 1


def enqueue_quietly(task: Task, *args: Any, fallback: str) -> bool:
    """Queue `task(*args)` at once; return False, logging `fallback`, if the broker does not answer.

    `fallback` says what does the work instead, for whoever reads the warning.
    """
    try:
        with task.app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0)
            task.apply_async(args=args, producer=producer, retry=False)
    except Exception:
        logger.warning("could not queue %s now; %s", task.name, fallback, exc_info=True)
        return False
    return True


def enqueue_on_commit(task: Task, *args: Any, fallback: str) -> None:
    """Queue `task(*args)` once the current transaction commits, never failing the caller.

    Outside a transaction it is queued at once.
    """
    transaction.on_commit(lambda: enqueue_quietly(task, *args, fallback=fallback), robust=True)


def nudge(task: Task) -> None:
    """Queue a dispatcher `task` now, or log and move on if the broker does not answer.

    Nothing depends on it: the rows are committed and beat runs the same dispatcher every
    few seconds. One nudge a second per process is enough: a burst of commits (a renewal
    run) must not flood the queue with dispatcher runs that would each find the work
    already done.
    """
    if not cache.add(f"nudge:{task.name}", 1, timeout=NUDGE_INTERVAL_SECONDS):
        return
    enqueue_quietly(task, fallback="its scheduled run will do the work")
