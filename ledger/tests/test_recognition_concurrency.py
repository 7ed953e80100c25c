"""The daily job run twice at once, or beside refunds, posts each payment's day once (real threads, PostgreSQL)."""

from collections import defaultdict
from datetime import timedelta

import pytest

from core import clock
from ledger.models import EntryKind, JournalEntry, Posting, RecognitionPlan
from ledger.services.recognition import revenue_recognize
from ledger.tests.test_recognition import first_day, period_days, subscribe
from payments.models import Payment
from payments.services.refunds.staff import refund_create
from payments.tests.concurrency import run_concurrently
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db(transaction=True)
PAYMENTS = 6


@pytest.fixture
def payments(viewer_client, memory_provider) -> list[Payment]:
    """Six viewers' months of 399.00 RUB, paid now; the billing clock then three days on."""
    TariffFactory(slug="monthly", amount=39900, currency="RUB")
    paid = [
        subscribe(viewer_client, memory_provider, user_id=f"viewer{n}", tariff="monthly")
        for n in range(PAYMENTS)
    ]
    clock.advance(timedelta(days=3))
    return paid


def books(payment: Payment) -> dict[str, int]:
    """Return each account's balance from the payment's entries (debit +)."""
    totals: dict[str, int] = defaultdict(int)
    for code, amount in Posting.objects.filter(entry__payment=payment).values_list("account__code", "amount"):
        totals[code] += amount
    return totals


def test_two_runs_of_the_same_day_at_once_post_once_per_payment(payments):
    day = first_day(payments[0]) + timedelta(days=1)

    results = run_concurrently(lambda _: revenue_recognize(day=day, batch_size=2), 2)

    assert sum(result.entries for result in results) == PAYMENTS
    for payment in payments:
        [entry] = JournalEntry.objects.filter(payment=payment, kind=EntryKind.REVENUE_RECOGNIZED)
        assert entry.source == f"recognition:{payment.pk}:{day}"
        expected = 39900 * 2 // period_days(payment)
        assert -books(payment)["revenue"] == expected
        plan = RecognitionPlan.objects.get(payment=payment)
        assert (plan.recognized, plan.deferred, plan.recognized_through) == (expected, 39900 - expected, day)


def test_two_runs_of_the_same_day_each_in_one_batch_post_once_per_payment(payments):
    # The default batch size takes every plan at once: the second run waits on the first's
    # locks, then finds the day posted in the plans and posts nothing.
    day = first_day(payments[0]) + timedelta(days=1)

    results = run_concurrently(lambda _: revenue_recognize(day=day), 2)

    assert sorted(result.entries for result in results) == [0, PAYMENTS]
    assert JournalEntry.objects.filter(kind=EntryKind.REVENUE_RECOGNIZED).count() == PAYMENTS
    for payment in payments:
        expected = 39900 * 2 // period_days(payment)
        assert -books(payment)["revenue"] == expected
        plan = RecognitionPlan.objects.get(payment=payment)
        assert (plan.recognized, plan.deferred, plan.recognized_through) == (expected, 39900 - expected, day)


def test_runs_of_two_days_at_once_leave_each_payment_where_the_later_day_says(payments):
    start = first_day(payments[0])
    days = [start, start + timedelta(days=1)]

    run_concurrently(lambda n: revenue_recognize(day=days[n], batch_size=2), 2)

    for payment in payments:
        assert -books(payment)["revenue"] == 39900 * 2 // period_days(payment)
        assert JournalEntry.objects.filter(payment=payment, kind=EntryKind.REVENUE_RECOGNIZED).count() in (
            1,
            2,
        )


def test_a_run_beside_refunds_neither_deadlocks_nor_loses_a_minor_unit(payments):
    day = clock.now().date() - timedelta(days=1)

    def work(n: int) -> object:
        if n == 0:
            return revenue_recognize(day=day, batch_size=2)
        # Half of one payment each, the odd ones ending access: subscription, payment, then plan.
        return refund_create(
            payment=payments[n], amount=19950, reason="requested_by_customer", end_access=bool(n % 2)
        )

    run_concurrently(work, PAYMENTS)

    for payment in payments:
        plan = RecognitionPlan.objects.get(payment=payment)
        balances = books(payment)
        unearned = sum(
            Posting.objects.filter(
                entry__payment=payment, entry__kind=EntryKind.REFUND, account__code="deferred_revenue"
            ).values_list("amount", flat=True)
        )
        assert -balances["deferred_revenue"] == plan.deferred
        assert -balances["revenue"] == plan.recognized
        assert plan.deferred + plan.recognized + unearned == 39900
        assert sum(balances.values()) == 0
    # Whatever the order the locks gave, running the day again posts what is left of it once.
    revenue_recognize(day=day)
    assert revenue_recognize(day=day).entries == 0
    assert JournalEntry.objects.filter(kind=EntryKind.REVENUE_RECOGNIZED).count() <= PAYMENTS
