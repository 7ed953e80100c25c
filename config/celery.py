"""The Celery application of the billing service.

Workers and beat start with `celery -A config ...`; configuration comes from Django
settings under the `CELERY_` prefix, so there is one place to read it.

Workers and beat log as the web processes do (settings' LOGGING, config/logging.py), and each
task's log lines carry a request id: the id of the request or task that queued it, carried in
the message's headers, else the task's own id.
"""

import os
from typing import Any

from celery import Celery, signals
from celery.app.task import Task

from core.log_context import Token, log_context_end, log_context_get, log_context_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def refuse_to_start_if_misconfigured(**kwargs: Any) -> None:
    """Stop a worker or beat under production settings whose configuration has errors."""
    import django
    from django.apps import apps

    if not apps.ready:  # Celery's Django fixup may not have set Django up yet
        django.setup()
    from config.checks import refuse_to_start_if_misconfigured as check

    check()


@signals.task_prerun.connect
@signals.task_postrun.connect
def keep_database_connections(sender: Task | None = None, **kwargs: Any) -> None:
    """Keep the worker's database connections between tasks, as Django keeps them between requests.

    Celery's Django fixup leaves them open (CELERY_DB_REUSE_MAX, settings/base.py); here, before
    and after each task, Django's own rule closes one older than DATABASE_CONN_MAX_AGE, or one
    that raised an error and no longer answers. Django would also send `SELECT 1` before the
    next task's first query (CONN_HEALTH_CHECKS), a second PostgreSQL transaction for every
    renewal: workers skip it. A connection the database dropped while the worker waited (a
    restart or failover since it opened, at most DATABASE_CONN_MAX_AGE ago) then fails the one
    task that meets it, as it fails the tasks running at that moment; the connection is closed
    after that task, whose work its retry or the job sweeping its rows picks up again (every
    task is idempotent).
    """
    if sender is not None and getattr(sender.request, "is_eager", False):
        return  # an eager task runs inside its caller, on the caller's connections
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()
        # No `SELECT 1` before the next task (see above); django-stubs do not know the flag.
        connection.health_check_done = True  # type: ignore[attr-defined]


# The message header that carries the request id from whoever queues a task to the task.
REQUEST_ID_HEADER = "billing_request_id"
# The log context each running task started, to end it when the task does (by task id: a
# worker's thread runs one task at a time, but an eagerly applied task runs inside another).
_task_contexts: dict[str, Token[Any]] = {}


@signals.setup_logging.connect
def log_as_the_web_processes_do(loglevel: int | str | None = None, **kwargs: Any) -> None:
    """Configure logging from settings' LOGGING instead of Celery's own format, at `--loglevel`.

    Connecting here is what stops Celery from replacing the root logger's handlers, so worker
    and beat lines are JSON in production too, with the request id, and scrubbed. The level
    stays the command line's, as with Celery's own setup.
    """
    import logging
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@signals.before_task_publish.connect
def send_request_id_with_task(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Put the current request's (or task's) id in the headers of a task message being sent."""
    request_id = log_context_get("request_id")
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def _request_id_of(task: Task, task_id: str) -> str:
    request = task.request
    sent = request.get(REQUEST_ID_HEADER) or (request.headers or {}).get(REQUEST_ID_HEADER)
    # An eagerly applied task runs inside its caller, whose id it keeps.
    return sent or log_context_get("request_id") or task_id


@signals.task_prerun.connect
def start_task_log_context(task_id: str, task: Task, **kwargs: Any) -> None:
    """Start the task's log context with the request id it was sent with, else its own id."""
    _task_contexts[task_id] = log_context_start(request_id=_request_id_of(task, task_id))


@signals.task_postrun.connect
def end_task_log_context(task_id: str, **kwargs: Any) -> None:
    """End the task's log context, so the worker's next task starts with nothing of it."""
    log_context_end(_task_contexts.pop(task_id, None))
