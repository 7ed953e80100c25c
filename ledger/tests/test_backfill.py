"""The backfill posts the history the ledger never heard of, as the live listeners would have, once."""

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from billing.services import subscription_extend
from billing.tests.conftest import monthly_tariff, paid_subscription
from core import clock
from core.days import utc_yesterday
from ledger.listeners import not_listening
from ledger.models import EntryKind, JournalEntry, Posting, RecognitionPlan
from ledger.services.backfill import ledger_backfill, recognition_catch_up
from ledger.services.checks import ledger_check
from payments.models import PAID_STATUSES, Payment
from payments.services.refunds.staff import refund_create
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.refund_helpers import support_staff

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_provider")]
__all__ = ["monthly_tariff", "paid_subscription"]  # the subscription engine's fixtures, used here

REASON = "requested_by_customer"


def books_of(payment: Payment) -> dict[str, int]:
    """Return each account's balance from the payment's entries (debit +)."""
    totals: dict[str, int] = defaultdict(int)
    for code, amount in Posting.objects.filter(entry__payment=payment).values_list("account__code", "amount"):
        totals[code] += amount
    return {code: amount for code, amount in totals.items() if amount}


def plan_of(payment: Payment) -> tuple:
    plan = RecognitionPlan.objects.get(payment=payment)
    return (
        plan.start_day,
        plan.end_day,
        plan.base_amount,
        plan.base_recognized,
        plan.recognized,
        plan.deferred,
    )


@pytest.fixture
def agent():
    return support_staff("agent")


@pytest.fixture
def twins(paid_subscription, agent) -> tuple[list[Payment], list[Payment]]:
    """Two viewers with the same history at the same moments: alice's with the ledger, bob's before it.

    Each pays a month, is given 5 days of goodwill, renews, and has 100.00 of the renewal refunded.
    """
    alice = paid_subscription("alice")
    with not_listening():
        bob = paid_subscription("bob")
    for subscription, dark in ((alice, False), (bob, True)):
        with not_listening() if dark else _live():
            subscription_extend(subscription=subscription, days=5, actor=agent, reason="goodwill")
    clock.advance(timedelta(days=40))
    for subscription, dark in ((alice, False), (bob, True)):
        with not_listening() if dark else _live():
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
            renewal = Payment.objects.get(subscription=subscription, kind="renewal")
            refund_create(payment=renewal, amount=10000, reason=REASON, created_by=agent)
    return _payments(alice.pk), _payments(bob.pk)


@contextmanager
def _live() -> Iterator[None]:
    yield


def _payments(subscription_id) -> list[Payment]:
    return list(Payment.objects.filter(subscription_id=subscription_id).order_by("created_at"))


def test_the_backfill_posts_what_the_listeners_would_have_posted(twins):
    alices, bobs = twins
    assert not JournalEntry.objects.filter(payment__in=bobs).exists()

    result = ledger_backfill()

    assert (result.captures, result.plans, result.extensions, result.refunds) == (2, 2, 1, 1)
    for alices_payment, bobs_payment in zip(alices, bobs, strict=True):
        assert books_of(bobs_payment) == books_of(alices_payment)
        assert plan_of(bobs_payment) == plan_of(alices_payment)
    renewal = bobs[1]
    assert JournalEntry.objects.filter(payment=renewal, kind=EntryKind.REFUND).get().source == (
        f"refund:{renewal.pk}:10000"
    )
    assert ledger_check().clean


def test_the_first_period_is_earned_over_its_goodwill_days_too(twins):
    first = twins[1][0]

    ledger_backfill()

    plan = RecognitionPlan.objects.get(payment=first)
    assert plan.end_day == first.period_end.date() + timedelta(days=5)


def test_a_second_backfill_posts_nothing(twins):
    ledger_backfill()
    entries = JournalEntry.objects.count()
    plans = sorted(plan_of(payment) for payment in twins[1])

    again = ledger_backfill(batch_size=1)

    assert (again.examined, again.posted, again.plans, again.extensions) == (4, 0, 0, 0)
    assert JournalEntry.objects.count() == entries
    assert sorted(plan_of(payment) for payment in twins[1]) == plans


def test_every_paid_payment_is_captured_once_in_batches(twins):
    ledger_backfill(batch_size=1)

    paid = Payment.objects.filter(status__in=PAID_STATUSES)
    assert paid.count() == 4
    for payment in paid:
        assert list(JournalEntry.objects.filter(payment=payment, kind=EntryKind.PAYMENT_CAPTURED)) == [
            JournalEntry.objects.get(source=f"payment:{payment.pk}")
        ]


def test_a_refund_made_after_the_ledger_went_live_is_not_posted_again(paid_subscription, agent):
    with not_listening():
        subscription = paid_subscription()
        payment = Payment.objects.get(subscription=subscription)
        refund_create(payment=payment, amount=5000, reason=REASON, created_by=agent)
    # The ledger goes live: the next refund books the payment's capture and posts itself.
    payment.refresh_from_db()
    refund_create(payment=payment, amount=3000, reason=REASON, created_by=agent)
    live = JournalEntry.objects.get(payment=payment, kind=EntryKind.REFUND)
    assert live.source == f"refund:{payment.pk}:8000"

    ledger_backfill()

    assert JournalEntry.objects.filter(payment=payment, kind=EntryKind.PAYMENT_CAPTURED).count() == 1
    sources = set(
        JournalEntry.objects.filter(payment=payment, kind=EntryKind.REFUND).values_list("source", flat=True)
    )
    assert sources == {f"refund:{payment.pk}:8000", f"refund:{payment.pk}:8000:backfill"}
    assert books_of(payment)["provider_clearing:stripe"] == 39900 - 8000
    assert ledger_check().clean
    assert ledger_backfill().posted == 0


def test_the_catch_up_earns_each_month_in_its_month_and_only_once(twins):
    ledger_backfill()

    runs = recognition_catch_up(through=utc_yesterday())

    assert len(runs) >= 2  # at least one month's end, then yesterday
    days = set(
        JournalEntry.objects.filter(kind=EntryKind.REVENUE_RECOGNIZED).values_list(
            "effective_at__date", flat=True
        )
    )
    assert len(days) >= 2
    first = twins[1][0]
    plan = RecognitionPlan.objects.get(payment=first)
    assert (plan.recognized, plan.deferred) == (first.amount, 0)  # its period, goodwill included, is over
    assert ledger_check().clean
    entries = JournalEntry.objects.count()
    assert sum(run.entries for run in recognition_catch_up(through=utc_yesterday())) == 0
    assert JournalEntry.objects.count() == entries


def test_the_command_reports_what_it_posted_and_recognises_through_yesterday(twins):
    out = StringIO()
    call_command("ledger_backfill", stdout=out)

    text = out.getvalue()
    assert "4 paid payments examined: 2 captures, 2 recognition plans (1 goodwill extensions)" in text
    assert f"Revenue recognised through {utc_yesterday().isoformat()}" in text
    assert ledger_check().clean

    again = StringIO()
    call_command("ledger_backfill", "--no-recognize", stdout=again)
    assert "0 captures, 0 recognition plans (0 goodwill extensions) and 0 refund entries" in again.getvalue()
