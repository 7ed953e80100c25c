"""Create, migrate and drop the benchmarks' throwaway PostgreSQL database."""

from typing import Any

import psycopg2
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from psycopg2 import sql

from bench import BENCH_DATABASE_NAME


def _database_settings() -> dict[str, Any]:
    database: dict[str, Any] = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("The benchmarks run on PostgreSQL only.")
    if database["NAME"] != BENCH_DATABASE_NAME:
        # This module drops the database it is given: never let it be a real one.
        raise RuntimeError(
            f"Refusing to use {database['NAME']!r}: benchmarks only create and drop {BENCH_DATABASE_NAME!r}."
        )
    return database


def _admin_execute(statement: sql.Composable) -> None:
    database = _database_settings()
    admin = psycopg2.connect(
        dbname="postgres",
        user=database["USER"] or None,
        password=database["PASSWORD"] or None,
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        connect_timeout=10,
    )
    try:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(statement)
    finally:
        admin.close()


def database_recreate() -> None:
    """Drop the benchmark database if it exists, create it empty and migrate it."""
    database_drop()
    name = sql.Identifier(_database_settings()["NAME"])
    _admin_execute(sql.SQL("CREATE DATABASE {}").format(name))
    call_command("migrate", verbosity=0, interactive=False)


def database_drop() -> None:
    """Drop the benchmark database, disconnecting whoever still uses it."""
    connections.close_all()
    name = sql.Identifier(_database_settings()["NAME"])
    _admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def database_transaction_count() -> int:
    """Return how many transactions PostgreSQL has counted in the benchmark database so far.

    Read on a fresh connection, closed afterwards, so this process's own pending statistics
    never lag behind; a server process reports its counts when it ends.
    """
    connections.close_all()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    connections.close_all()
    return int(row[0]) if row else 0
