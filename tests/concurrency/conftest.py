"""Fixtures of the concurrency tests: committed writes on PostgreSQL, the sandbox, no rate limit.

The operations run in threads with their own database connections, so they must see each
other's commits: nothing may wrap a test in a transaction. pytest-django's transactional
tests flush the whole database after each test (a quarter to a third of a second here, for
every one of the ~180 pair tests). Here `db` instead lets tests write for real and empties
the service's tables before and after each test with one transaction of DELETEs (a few
milliseconds), keeping what migrations made (roles and their permissions, content types).
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.backends.signals import connection_created
from pytest_django.live_server_helper import LiveServer

from accounts.tests.roles import roles_restore, staff_member
from payments.tests.sandbox_helpers import Control
from tariffs.models import Tariff
from tests.concurrency.operations import TARIFF_A, TARIFF_B, TARIFF_C, World

# Made by migrations and never written by the service: kept, as after `migrate`.
KEPT_TABLES = frozenset(
    {"auth_group", "auth_group_permissions", "auth_permission", "django_content_type", "django_migrations"}
)
# PostgreSQL looks for a deadlock once a lock wait lasts this long (default 1 s). Lower, a
# deadlocking pair is found (and its round ends) sooner; what deadlocks does not change.
DEADLOCK_TIMEOUT = "100ms"
# A lock wait this long is a hang (e.g. a lock held across a wait on another thread): it
# fails the operation with LockNotAvailable instead of freezing the test run.
LOCK_TIMEOUT = "15s"
# A test database need not survive a crash: commits do not wait for the disk (what other
# transactions see, and when, is unchanged). The rounds are mostly short commits.
SYNCHRONOUS_COMMIT = "off"


def _tune_postgres(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # deadlock_timeout needs a superuser: the tests connect as postgres.
        cursor.execute(f"SET deadlock_timeout = '{DEADLOCK_TIMEOUT}'")
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"SET synchronous_commit = '{SYNCHRONOUS_COMMIT}'")


@pytest.fixture(autouse=True)
def _postgres_lock_settings() -> Iterator[None]:
    """Give every connection opened during a test a quick deadlock check, a lock-wait limit and fast commits."""
    connection_created.connect(_tune_postgres)
    yield
    connection_created.disconnect(_tune_postgres)


@pytest.fixture
def _no_rate_limit(settings: Any) -> None:
    # The shared outgoing limit (25 calls/s) would make these tests minutes long; they prove
    # what concurrent writes leave behind, and the limiter has its own tests.
    settings.STRIPE_RATE_LIMIT_PER_SECOND = 0


def _empty_service_tables() -> None:
    tables = [
        table
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False)
        if table not in KEPT_TABLES
    ]
    # The ledger's books refuse DELETE (append-only triggers): they are emptied by TRUNCATE,
    # which is no row change. PostgreSQL checks Django's foreign keys at commit (DEFERRABLE
    # INITIALLY DEFERRED), so the order of the DELETEs does not matter.
    books = [table for table in tables if table.startswith("ledger_")]
    with transaction.atomic(), connection.cursor() as cursor:
        if books:
            cursor.execute(f"TRUNCATE {', '.join(connection.ops.quote_name(t) for t in books)}")
        for table in tables:
            if table not in books:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names from Django


@pytest.fixture(scope="module")
def _committed_db_access(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield
        _empty_service_tables()
        connections.close_all()


@pytest.fixture
def db(_committed_db_access: None) -> Iterator[None]:
    """Override pytest-django's `db` here: writes are committed, the tables emptied before and after.

    Named `db` because pytest-django creates the test database for the session when a test
    uses a fixture of that name (or its `django_db` marker, which would bring the flush back).
    """
    assert connection.vendor == "postgresql", "concurrency is proved on PostgreSQL"
    _empty_service_tables()
    roles_restore()
    yield
    _empty_service_tables()


@pytest.fixture
def fresh_world(db: None, stripe_sandbox: Control, _no_rate_limit: None) -> Callable[[], World]:
    """Return a function that empties the database and the sandbox and returns a new `World`.

    Each round starts from nothing but the three tariffs (A, B and C) and two support staff
    members, so what reconciliation and the checks read is that round's alone.
    """

    def reset() -> World:
        _empty_service_tables()
        stripe_sandbox.post("/reset")
        stripe_sandbox.delete("/faults")
        stripe_sandbox.post("/config", {"webhook_url": None})
        Tariff.objects.create(slug=TARIFF_A, name="Monthly", amount=39900, currency="RUB")
        Tariff.objects.create(slug=TARIFF_B, name="Monthly HD", amount=59900, currency="RUB")
        Tariff.objects.create(slug=TARIFF_C, name="Monthly Basic", amount=19900, currency="RUB")
        return World(
            sandbox=stripe_sandbox,
            support=staff_member("Support", username="support-1"),
            other_support=staff_member("Support", username="support-2"),
        )

    return reset


@pytest.fixture(scope="session")
def live_server(django_db_setup: None) -> Iterator[LiveServer]:
    """Serve the app on 127.0.0.1 (pytest-django's default, localhost, may resolve to ::1)."""
    server = LiveServer("127.0.0.1")
    yield server
    server.stop()
