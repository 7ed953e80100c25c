"""The deferred schedule's day count is right on SQLite too, the database of `make run`."""

from datetime import date

import pytest
from django.db.models import DateField, Value
from django.db.models.sql import Query
from django.db.utils import ConnectionHandler

from ledger.models import RecognitionPlan
from ledger.selectors import _DaysBetween


@pytest.fixture
def sqlite(django_db_blocker):
    """An in-memory SQLite connection of its own, beside the suite's PostgreSQL."""
    connection = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})[
        "default"
    ]
    with django_db_blocker.unblock():
        yield connection
        connection.close()


@pytest.mark.parametrize(
    ("later", "earlier", "days"),
    [
        (date(2026, 3, 1), date(2026, 2, 1), 28),
        (date(2025, 1, 31), date(2024, 12, 31), 31),  # across a year: text subtraction would say 1
        (date(2028, 3, 1), date(2028, 2, 1), 29),  # a leap February
        (date(2026, 2, 1), date(2026, 2, 1), 0),
    ],
)
def test_days_between_two_dates_on_sqlite(sqlite, later, earlier, days):
    expression = _DaysBetween(Value(later, DateField()), Value(earlier, DateField()))
    compiler = Query(RecognitionPlan).get_compiler(connection=sqlite)
    sql, params = compiler.compile(expression)
    with sqlite.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        assert cursor.fetchone()[0] == days
