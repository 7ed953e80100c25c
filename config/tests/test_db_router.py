"""Reads off the primary: pages that only show figures read the replica, money is decided on the primary.

The replica here is a second connection to the test database (config/settings/test.py, a
test mirror), named the replica for these tests only. The tests that read through it commit
their rows (transaction=True): another connection never sees a test's open transaction.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext

from accounts.tests.roles import roles_restore, staff_member
from billing.tests.conftest import monthly_tariff, paid_subscription  # noqa: F401 (fixtures used here)
from config.db_router import ReplicaRouter
from core import clock
from core.replica import replica_reads
from ledger.exports import journal_dataset
from payments.exports import EXPORT_FORMATS, PaymentExportForm, PaymentResource
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.factories import PaymentFactory

BOTH = ["default", "replica"]
with_replica = pytest.mark.django_db(transaction=True, databases=BOTH)


class Queries:
    """The SQL each of the two connections ran inside the block."""

    def __init__(self) -> None:
        self.default = CaptureQueriesContext(connections["default"])
        self.replica = CaptureQueriesContext(connections["replica"])

    def __enter__(self) -> "Queries":
        self.default.__enter__()
        self.replica.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.replica.__exit__(*exc)
        self.default.__exit__(*exc)

    def on(self, alias: str, table: str) -> list[str]:
        """Return the statements run on `alias` that name `table`."""
        captured = self.default if alias == "default" else self.replica
        return [query["sql"] for query in captured.captured_queries if f'"{table}"' in query["sql"]]


@pytest.fixture
def replica(settings) -> Iterator[None]:
    """Name the mirror connection the read replica, as DATABASE_REPLICA_URL does in production."""
    settings.DATABASE_REPLICA_ALIAS = "replica"
    yield


def paid_on(day: datetime, amount: int = 39900) -> Payment:
    payment = PaymentFactory.create(
        paid_at=day, subscription__tariff__amount=amount, subscription__tariff__currency="RUB"
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=day)
    return payment


class TestWithoutAReplica:
    def test_the_context_changes_nothing(self):
        with replica_reads():
            assert Payment.objects.all().db == "default"
            assert router.db_for_read(Payment) == "default"

    def test_migrations_writes_and_relations_stay_with_the_primary(self):
        replica_router = ReplicaRouter()
        assert replica_router.allow_migrate("default", "payments") is True
        assert replica_router.allow_migrate("replica", "payments") is False
        with replica_reads():
            assert replica_router.db_for_write(Payment) == "default"


@with_replica
class TestWithAReplica:
    def test_the_dashboard_reads_its_figures_from_the_replica(self, replica, client):
        roles_restore()  # an earlier transactional test may have flushed the role groups
        paid_on(clock.now() - timedelta(days=1), amount=39900)
        client.force_login(staff_member("Accounting"))

        with Queries() as queries:
            response = client.get("/admin/dashboard/")

        assert response.status_code == 200
        assert "399.00" in response.content.decode()  # the replica sees the committed payment
        assert queries.on("replica", "payments_payment")
        assert queries.on("default", "payments_payment") == []
        # Who is signed in and what they may see is still the primary's word.
        assert queries.on("default", "django_session")
        assert queries.on("replica", "django_session") == []

    def test_reads_outside_the_context_go_to_the_primary(self, replica):
        paid_on(datetime(2026, 3, 10, 12, tzinfo=UTC))
        with Queries() as queries:
            assert Payment.objects.count() == 1
            with replica_reads():
                assert Payment.objects.count() == 1
        assert len(queries.on("default", "payments_payment")) == 1
        assert len(queries.on("replica", "payments_payment")) == 1

    def test_writes_inside_the_context_go_to_the_primary(self, replica):
        payment = paid_on(datetime(2026, 3, 10, 12, tzinfo=UTC))
        with Queries() as queries, replica_reads():
            Payment.objects.filter(pk=payment.pk).update(failure_message="written on the primary")
            PaymentFactory.create()
        assert any(sql.startswith("UPDATE") for sql in queries.on("default", "payments_payment"))
        assert any(sql.startswith("INSERT") for sql in queries.on("default", "payments_payment"))
        assert not [sql for sql in queries.on("replica", "payments_payment") if not sql.startswith("SELECT")]

    def test_a_locking_read_inside_the_context_reads_the_primary(self, replica):
        payment = paid_on(datetime(2026, 3, 10, 12, tzinfo=UTC))
        with Queries() as queries, replica_reads(), transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            # Any read while the primary holds a transaction open: it must see what it wrote.
            Payment.objects.filter(pk=payment.pk).update(refunded_amount=100)
            assert Payment.objects.get(pk=payment.pk).refunded_amount == 100
        assert locked.pk == payment.pk
        assert any("FOR UPDATE" in sql for sql in queries.on("default", "payments_payment"))
        assert queries.on("replica", "payments_payment") == []

    def test_a_renewal_run_inside_the_context_reads_only_the_primary(
        self,
        replica,
        paid_subscription,  # noqa: F811
        memory_provider,
    ):
        subscription = paid_subscription()
        clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))

        with Queries() as queries, replica_reads():
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED

        assert queries.replica.captured_queries == []
        assert queries.on("default", "billing_subscription")
        renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        assert renewal.status == PaymentStatus.SUCCEEDED

    def test_the_payments_export_reads_the_replica(self, replica):
        paid_on(datetime(2026, 3, 10, 12, tzinfo=UTC))
        form = PaymentExportForm(
            formats=EXPORT_FORMATS,
            resources=[PaymentResource],
            data={"date_from": "2026-03-01", "date_to": "2026-03-31", "resource": "0", "format": "0"},
        )
        with Queries() as queries:
            dataset = PaymentResource().export(queryset=Payment.objects.all(), export_form=form)
        assert len(dataset) == 1
        assert queries.on("replica", "payments_payment")
        assert queries.on("default", "payments_payment") == []

    def test_the_journal_export_reads_the_replica(self, replica):
        with Queries() as queries:
            dataset = journal_dataset(date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
        assert len(dataset) == 0
        assert queries.on("replica", "ledger_posting")
        assert queries.on("default", "ledger_posting") == []


def settings_databases(module: str, **environ: str) -> str:
    """Return `sorted(DATABASES)` and DATABASE_REPLICA_ALIAS as a settings module computes them."""
    code = f"import {module} as s; print(sorted(s.DATABASES), s.DATABASE_REPLICA_ALIAS, s.DATABASE_ROUTERS)"
    keep = {name: value for name, value in os.environ.items() if not name.startswith("DATABASE")}
    done = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-c", code],
        env={**keep, **environ},
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


class TestSettings:
    def test_without_database_replica_url_there_is_no_replica(self):
        assert (
            settings_databases("config.settings.base")
            == "['default'] None ['config.db_router.ReplicaRouter']"
        )

    def test_database_replica_url_adds_the_replica_in_production_too(self):
        production = {
            "DJANGO_SECRET_KEY": "x" * 50,
            "DATABASE_URL": "postgres://billing@primary:5432/billing",
            "DATABASE_REPLICA_URL": "postgres://billing@replica:5432/billing",
            "CELERY_BROKER_URL": "redis://redis:6379/0",
        }
        assert (
            settings_databases("config.settings.production", **production)
            == "['default', 'replica'] replica ['config.db_router.ReplicaRouter']"
        )
