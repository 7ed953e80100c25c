"""Backfills run at once post each payment once (real threads, PostgreSQL)."""

import pytest

from billing.tests.conftest import monthly_tariff, paid_subscription
from ledger.listeners import not_listening
from ledger.models import EntryKind, JournalEntry
from ledger.services.backfill import ledger_backfill
from ledger.services.checks import ledger_check
from payments.models import Payment
from payments.tests.concurrency import run_concurrently

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("memory_provider")]
__all__ = ["monthly_tariff", "paid_subscription"]  # the subscription engine's fixtures, used here


@pytest.fixture
def history(paid_subscription) -> list[Payment]:
    """Five viewers who paid before the ledger existed."""
    with not_listening():
        for number in range(5):
            paid_subscription(f"viewer-{number}")
    return list(Payment.objects.all())


def test_four_backfills_at_once_post_each_payment_once(history):
    results = run_concurrently(lambda _: ledger_backfill(batch_size=2), 4)

    assert sum(result.captures for result in results) == len(history) == 5
    for payment in history:
        assert JournalEntry.objects.filter(payment=payment, kind=EntryKind.PAYMENT_CAPTURED).count() == 1
    assert ledger_check().clean
