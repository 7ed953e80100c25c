"""Ask a worker to run a dispatcher now, after a commit: a shortcut that may fail without harm."""

import logging

from celery.app.task import Task
from django.core.cache import cache

logger = logging.getLogger(__name__)
NUDGE_INTERVAL_SECONDS = 1


def nudge(task: Task) -> None:
    """Queue `task` at once, or log and move on if the broker does not answer at the first try.

    Nothing depends on it: the rows are committed and beat runs the same dispatcher every
    few seconds. So it neither retries nor waits (a commit must not hang on a broker
    outage) and never raises into the caller. One nudge a second per process is enough: a
    burst of commits (a renewal run) must not flood the queue with dispatcher runs that
    would each find the work already done.
    """
    if not cache.add(f"nudge:{task.name}", 1, timeout=NUDGE_INTERVAL_SECONDS):
        return
    try:
        with task.app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0)
            task.apply_async(producer=producer, retry=False)
    except Exception:
        logger.warning("could not queue %s now; its scheduled run will do the work", task.name, exc_info=True)
