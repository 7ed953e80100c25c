"""The reports read day totals that the database keeps equal to the postings, whatever posts them."""

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum

from ledger.models import DayTotal, EntryKind, Posting
from ledger.selectors import revenue_by_month, trial_balance
from ledger.services.checks import ledger_check
from ledger.services.postings import entry_post
from ledger.services.totals import day_totals_compact

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def fee(source: str, amount: int, at: datetime, currency: str = "RUB") -> None:
    """Post a provider fee: the provider's clearing account pays for it."""
    entry_post(
        source=source,
        kind=EntryKind.PROVIDER_FEE,
        currency=currency,
        effective_at=at,
        lines=[("provider_fees", amount), ("provider_clearing:stripe", -amount)],
    )


def revenue(source: str, amount: int, at: datetime) -> None:
    entry_post(
        source=source,
        kind=EntryKind.REVENUE_RECOGNIZED,
        currency="RUB",
        effective_at=at,
        lines=[("deferred_revenue", amount), ("revenue", -amount)],
    )


def totals_by_account() -> dict[tuple[str, str], int]:
    return {
        (row["currency"], row["account__code"]): row["net"]
        for row in DayTotal.objects.values("currency", "account__code").annotate(net=Sum("amount"))
    }


def postings_by_account() -> dict[tuple[str, str], int]:
    return {
        (row["currency"], row["account__code"]): row["net"]
        for row in Posting.objects.values("currency", "account__code").annotate(net=Sum("amount"))
    }


def balances(at: datetime) -> dict[tuple[str, str], int]:
    return {(book.currency, line.code): line.net for book in trial_balance(at=at) for line in book.lines}


@pytest.mark.django_db
class TestWhatTheReportsRead:
    def test_every_posting_is_in_its_accounts_day_total(self):
        fee("fee:1", 120, NOON)
        fee("fee:2", 80, NOON + timedelta(hours=13))  # the next UTC day
        fee("fee:3", 5, NOON, currency="EUR")

        assert (
            totals_by_account()
            == postings_by_account()
            == {
                ("RUB", "provider_fees"): 200,
                ("RUB", "provider_clearing:stripe"): -200,
                ("EUR", "provider_fees"): 5,
                ("EUR", "provider_clearing:stripe"): -5,
            }
        )
        days = set(DayTotal.objects.filter(currency="RUB").values_list("day", flat=True))
        assert days == {date(2026, 3, 10), date(2026, 3, 11)}

    def test_a_balance_in_the_middle_of_a_day_counts_only_what_came_before_it(self):
        fee("fee:morning", 100, NOON - timedelta(hours=3))
        fee("fee:evening", 40, NOON + timedelta(hours=3))

        assert balances(NOON)[("RUB", "provider_fees")] == 100
        assert balances(NOON + timedelta(hours=4))[("RUB", "provider_fees")] == 140
        # At midnight the day totals alone answer: the whole of the 10th, nothing of the 11th.
        assert balances(datetime(2026, 3, 11, tzinfo=UTC))[("RUB", "provider_fees")] == 140
        assert ("RUB", "provider_fees") not in balances(datetime(2026, 3, 10, tzinfo=UTC))

    def test_merging_leaves_one_row_per_account_day_and_kind_and_changes_no_figure(self):
        for number in range(5):
            fee(f"fee:{number}", 10 + number, NOON + timedelta(minutes=number))
            revenue(f"recognition:{number}", 100, NOON)
        before = (
            balances(NOON + timedelta(days=1)),
            revenue_by_month(date_from=NOON.date(), date_to=NOON.date()),
        )

        outcome = day_totals_compact()

        assert (outcome.removed, outcome.merged) == (20, 4)
        keys = Counter(DayTotal.objects.values_list("account_id", "day", "kind"))
        assert set(keys.values()) == {1}
        after = (
            balances(NOON + timedelta(days=1)),
            revenue_by_month(date_from=NOON.date(), date_to=NOON.date()),
        )
        assert after == before
        assert before[0][("RUB", "revenue")] == -500
        assert day_totals_compact().removed == 0  # nothing left to merge

    def test_the_check_reports_a_day_total_the_postings_do_not_back(self):
        fee("fee:1", 120, NOON)
        assert ledger_check().clean

        clearing = Posting.objects.get(account__code="provider_fees").account
        DayTotal.objects.create(
            account=clearing, currency="RUB", day=NOON.date(), kind="provider_fee", amount=1
        )

        found = [m for m in ledger_check().mismatches if m.check == "day_totals"]
        assert [(m.subject, m.expected, m.found) for m in found] == [("account:provider_fees", 120, 121)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and concurrent writers need PostgreSQL"
)
def test_merging_while_others_post_neither_loses_nor_doubles_a_posting():
    writers, entries_each = 4, 25
    done = threading.Event()
    errors: list[BaseException] = []

    def post(writer: int) -> None:
        try:
            for number in range(entries_each):
                with transaction.atomic():
                    fee(f"fee:{writer}:{number}", 1 + number, NOON + timedelta(seconds=number))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def merge() -> None:
        try:
            while not done.is_set():
                day_totals_compact()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    merger = threading.Thread(target=merge)
    merger.start()
    threads = [threading.Thread(target=post, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    merger.join()

    assert errors == []
    expected = writers * sum(1 + number for number in range(entries_each))
    assert postings_by_account()[("RUB", "provider_fees")] == expected
    assert totals_by_account() == postings_by_account()
    day_totals_compact()
    assert totals_by_account() == postings_by_account()
    assert DayTotal.objects.count() == 2  # one row for each account of the one day


@pytest.fixture
def before_day_totals() -> Iterator[None]:
    """Migrate the ledger back to before day totals; forwards to the latest state afterwards."""
    MigrationExecutor(connection).migrate([("ledger", "0004_report_permissions")])
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_migration_sums_the_postings_already_in_the_books(before_day_totals: Any):
    fee("fee:old", 300, NOON)
    fee("fee:older", 200, NOON - timedelta(days=40))

    MigrationExecutor(connection).migrate([("ledger", "0005_day_totals")])

    assert totals_by_account() == {("RUB", "provider_fees"): 500, ("RUB", "provider_clearing:stripe"): -500}
    fee("fee:new", 7, NOON)  # and the trigger counts what comes after
    assert totals_by_account()[("RUB", "provider_fees")] == 507
