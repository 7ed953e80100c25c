"""Retention: old ledger check runs go, in batches, the last one stays; the books are never touched."""

from datetime import timedelta

import pytest

from billing.tests.conftest import monthly_tariff, paid_subscription
from core import clock
from ledger.models import JournalEntry, LedgerCheckRun, Posting
from ledger.services.retention import ledger_check_runs_prune, ledger_retention_run

pytestmark = pytest.mark.django_db
__all__ = ["monthly_tariff", "paid_subscription"]  # the subscription engine's fixtures, used here


def check_run(*, age_days: float) -> LedgerCheckRun:
    return LedgerCheckRun.objects.create(
        checked_at=clock.now() - timedelta(days=age_days),
        balanced=True,
        entries=0,
        unbalanced_entries=0,
        mismatch_count=0,
    )


def left() -> set[int]:
    return set(LedgerCheckRun.objects.values_list("pk", flat=True))


def test_check_runs_older_than_the_period_go_and_young_ones_stay():
    old = [check_run(age_days=days) for days in (700, 500, 401)]
    young = [check_run(age_days=days) for days in (399, 1)]

    assert ledger_retention_run(now=clock.now()) == {"ledger_check_runs": 3}

    assert left() == {run.pk for run in young}
    assert not LedgerCheckRun.objects.filter(pk__in=[run.pk for run in old]).exists()


def test_the_last_check_run_stays_however_old():
    check_run(age_days=900)
    last = check_run(age_days=800)

    assert ledger_check_runs_prune(before=clock.now() - timedelta(days=400), batch_size=10) == 1
    assert left() == {last.pk}


def test_batches_repeat_until_every_old_run_is_gone():
    for days in range(500, 507):
        check_run(age_days=days)
    last = check_run(age_days=1)

    assert ledger_check_runs_prune(before=clock.now() - timedelta(days=400), batch_size=3) == 7
    assert left() == {last.pk}


@pytest.mark.usefixtures("memory_provider")
def test_the_books_stay_whatever_their_age(paid_subscription, settings):
    paid_subscription()
    entries, postings = JournalEntry.objects.count(), Posting.objects.count()
    assert entries and postings
    check_run(age_days=2)
    check_run(age_days=1)
    settings.RETENTION_LEDGER_CHECK_RUNS_DAYS = 1

    clock.advance(timedelta(days=3000))
    assert ledger_retention_run(now=clock.now()) == {"ledger_check_runs": 1}

    assert (JournalEntry.objects.count(), Posting.objects.count()) == (entries, postings)


def test_a_period_of_zero_keeps_every_run(settings):
    settings.RETENTION_LEDGER_CHECK_RUNS_DAYS = 0
    check_run(age_days=5000)
    check_run(age_days=4000)

    assert ledger_retention_run(now=clock.now()) == {}
    assert LedgerCheckRun.objects.count() == 2
