"""Ask a worker to run a dispatcher now, after a commit: a shortcut that may fail without harm."""

import logging

from celery.app.task import Task

logger = logging.getLogger(__name__)


def nudge(task: Task) -> None:
    """Queue `task` at once, or log and move on if the broker does not answer at the first try.

    Nothing depends on it: the rows are committed and beat runs the same dispatcher every
    few seconds. So it neither retries nor waits (a commit must not hang on a broker
    outage) and never raises into the caller.
    """
    try:
        with task.app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0)
            task.apply_async(producer=producer, retry=False)
    except Exception:
        logger.warning("could not queue %s now; its scheduled run will do the work", task.name, exc_info=True)
