"""Create, migrate and drop the benchmarks' throwaway PostgreSQL databases.

Each benchmark has its database (`billing_bench`, or `billing_bench_<name>` for the ones that
keep a dataset of their own); this module refuses to touch any other, since it drops them.
"""

from typing import Any

import psycopg2
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from psycopg2 import sql

from bench import BENCH_DATABASE_NAME


def is_bench_database(name: str) -> bool:
    """Return whether `name` is one of the benchmarks' own databases."""
    return name == BENCH_DATABASE_NAME or name.startswith(f"{BENCH_DATABASE_NAME}_")


def _database_settings() -> dict[str, Any]:
    database: dict[str, Any] = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("The benchmarks run on PostgreSQL only.")
    if not is_bench_database(database["NAME"]):
        # This module drops the database it is given: never let it be a real one.
        raise RuntimeError(
            f"Refusing to use {database['NAME']!r}: benchmarks only create and drop "
            f"{BENCH_DATABASE_NAME!r} and {BENCH_DATABASE_NAME + '_*'!r}."
        )
    return database


def _database_name() -> sql.Identifier:
    return sql.Identifier(_database_settings()["NAME"])


def _admin_query(statement: sql.Composable) -> list[tuple[Any, ...]]:
    """Run `statement` on the server's `postgres` database, outside any transaction."""
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
            return cursor.fetchall() if cursor.description else []
    finally:
        admin.close()


def database_exists() -> bool:
    """Return whether the benchmark's database exists."""
    name = sql.Literal(_database_settings()["NAME"])
    return bool(_admin_query(sql.SQL("SELECT 1 FROM pg_database WHERE datname = {}").format(name)))


def database_create() -> None:
    """Drop the benchmark's database if it exists, then create it empty."""
    database_drop()
    _admin_query(sql.SQL("CREATE DATABASE {}").format(_database_name()))


def database_migrate() -> None:
    """Apply the project's migrations (a kept database gets the indexes added since)."""
    call_command("migrate", verbosity=0, interactive=False)


def database_recreate() -> None:
    """Drop the benchmark's database if it exists, create it empty and migrate it."""
    database_create()
    database_migrate()


def database_drop() -> None:
    """Drop the benchmark's database, disconnecting whoever still uses it."""
    connections.close_all()
    _admin_query(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_database_name()))


def database_vacuum() -> None:
    """Bring the tables to a long-lived state: all-visible pages and fresh planner statistics."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def database_transaction_count() -> int:
    """Return how many transactions PostgreSQL has counted in the benchmark's database so far.

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


def postgres_version() -> str:
    """Return the PostgreSQL server's version number."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        row = cursor.fetchone()
    return str(row[0]).split()[0] if row else "?"
