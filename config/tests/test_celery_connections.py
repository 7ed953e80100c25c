"""A worker keeps its database connection between tasks: each renewal is one PostgreSQL transaction.

The renewals run as a prefork worker's child runs them: Celery's Django fixup installed (with
the project's CELERY_DB_REUSE_MAX) and each task traced with its prerun and postrun signals.
`Task.apply()` would not do: an eager task is left alone by the fixup and by
config/celery.py. Transactions are counted the way PostgreSQL's `pg_stat_database` counts them
(a real worker gives the same figures): one for each session's start, one per statement run
outside a transaction, one per transaction the driver opens with BEGIN.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest
from celery import states
from celery.app.trace import build_tracer
from celery.fixups.django import DjangoWorkerFixup  # type: ignore[attr-defined]
from django.db import OperationalError, connection
from django.db.backends.signals import connection_created

from billing.tasks import renew_subscription
from billing.tests.conftest import monthly_tariff, paid_subscription  # noqa: F401 (fixtures used here)
from config.celery import app as celery_app
from core import clock
from payments.models import Payment, PaymentKind, PaymentStatus

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Counts:
    sessions: int = 0
    # Statements in autocommit mode and BEGIN … COMMIT/ROLLBACK blocks.
    transactions: int = 0

    @property
    def postgresql_transactions(self) -> int:
        """Return what pg_stat_database's xact_commit/xact_rollback grow by: a session's start is one."""
        return self.sessions + self.transactions


class TransactionLog:
    """Count the sessions and transactions of the default connection while installed."""

    def __init__(self) -> None:
        self.counts = Counts()

    def cursor_class(self) -> type[psycopg2.extensions.cursor]:
        log = self

        class CountingCursor(psycopg2.extensions.cursor):
            def execute(self, query: Any, vars: Any = None) -> Any:
                log._statement(self.connection)
                return super().execute(query, vars)

            def executemany(self, query: Any, vars_list: Any) -> Any:
                log._statement(self.connection)
                return super().executemany(query, vars_list)

        return CountingCursor

    def _statement(self, raw: psycopg2.extensions.connection) -> None:
        # In autocommit mode a statement is a transaction of its own; otherwise the driver
        # sends BEGIN before the first statement after a COMMIT or ROLLBACK.
        idle = raw.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        if raw.autocommit or idle:
            self.counts.transactions += 1

    def _session(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.alias == "default":
            self.counts.sessions += 1

    def take(self) -> Counts:
        """Return the counts since the last call, and start again from zero."""
        counts, self.counts = self.counts, Counts()
        return counts


class WorkerChild:
    """The process of a prefork worker that runs tasks, in this test process."""

    def __init__(self) -> None:
        self.fixup = DjangoWorkerFixup(celery_app)
        self.fixup.install()
        # A fresh child closes whatever connections it inherited from its parent.
        self.fixup.on_worker_process_init()

    def run(self, task: Any, *args: Any) -> Any:
        """Run a task as the pool does (not eagerly, with its signals); return its value or raise its error."""
        task_id = str(uuid.uuid4())
        trace = build_tracer(task.name, celery_app.tasks[task.name], app=celery_app, hostname="test-worker")
        result = trace(task_id, list(args), {}, {"id": task_id, "hostname": "test-worker"})
        if result.info is not None and result.info.state == states.FAILURE:
            raise result.info.retval
        return result.retval

    def stop(self) -> None:
        from celery import signals

        signals.task_prerun.disconnect(self.fixup.on_task_prerun)
        signals.task_postrun.disconnect(self.fixup.on_task_postrun)
        signals.worker_process_init.disconnect(self.fixup.on_worker_process_init)
        signals.beat_embedded_init.disconnect(self.fixup.close_database)


@pytest.fixture
def production_connection() -> Iterator[TransactionLog]:
    """Open the default connection as production settings do (kept 60 s, health checks on), counted."""
    log = TransactionLog()
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(
        CONN_MAX_AGE=60,
        CONN_HEALTH_CHECKS=True,
        OPTIONS={**saved["OPTIONS"], "cursor_factory": log.cursor_class()},
    )
    connection_created.connect(log._session)
    try:
        yield log
    finally:
        connection_created.disconnect(log._session)
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def worker() -> Iterator[WorkerChild]:
    child = WorkerChild()
    try:
        yield child
    finally:
        child.stop()


@pytest.fixture
def due_subscriptions(paid_subscription, memory_provider):  # noqa: F811
    """Return three paid subscriptions whose renewal is due now."""
    subscriptions = [paid_subscription(user_id=f"viewer-{n}") for n in range(3)]
    clock.advance(max(s.current_period_end for s in subscriptions) - clock.now() + timedelta(minutes=1))
    return subscriptions


def renewed() -> int:
    return Payment.objects.filter(kind=PaymentKind.RENEWAL, status=PaymentStatus.SUCCEEDED).count()


def test_each_renewal_after_the_first_is_one_transaction_on_the_same_connection(
    due_subscriptions, production_connection, worker
):
    log = production_connection
    first, *others = due_subscriptions

    assert worker.run(renew_subscription, str(first.pk)) == "renewed"
    opening = log.take()
    # The first task opens the connection (and Django may set its time zone on it).
    assert opening.sessions == 1

    for subscription in others:
        assert worker.run(renew_subscription, str(subscription.pk)) == "renewed"
        counts = log.take()
        assert (counts.sessions, counts.postgresql_transactions) == (0, 1)
    assert renewed() == 3


def test_with_no_connection_age_each_task_gets_a_connection_of_its_own(
    due_subscriptions, production_connection, worker
):
    connection.settings_dict["CONN_MAX_AGE"] = 0  # as on SQLite, where web and workers share a file
    log = production_connection

    for subscription in due_subscriptions:
        assert worker.run(renew_subscription, str(subscription.pk)) == "renewed"
        assert log.take().sessions == 1
    assert renewed() == 3


def test_a_connection_the_database_dropped_fails_one_task_and_is_replaced(
    due_subscriptions, production_connection, worker
):
    log = production_connection
    first, second, third = due_subscriptions
    assert worker.run(renew_subscription, str(first.pk)) == "renewed"
    pid = connection.connection.info.backend_pid
    admin = psycopg2.connect(**{**connection.get_connection_params(), "cursor_factory": None})
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_terminate_backend(%s)", [pid])  # as a restart or failover would
    admin.close()
    log.take()

    with pytest.raises(OperationalError):
        worker.run(renew_subscription, str(second.pk))
    assert worker.run(renew_subscription, str(third.pk)) == "renewed"
    assert log.take().sessions == 1
    # The failed renewal is simply due again: the next run of the job renews it.
    assert worker.run(renew_subscription, str(second.pk)) == "renewed"
    assert renewed() == 3
