"""Money that moves is in the books once, balanced, and the books cannot be edited afterwards."""

from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from ledger.models import EntryKind, JournalEntry, Posting, RecognitionPlan
from ledger.services.postings import LedgerUnbalanced, entry_post
from payments.models import Payment
from payments.services.refunds.staff import refund_create
from payments.tests.refund_helpers import pay, support_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(viewer_client, memory_provider) -> Payment:
    """399.00 RUB paid for a month of "monthly"."""
    return pay(viewer_client, memory_provider)


def balances(payment: Payment) -> dict[str, int]:
    """Return each account's balance from the payment's entries (debit +)."""
    totals: dict[str, int] = defaultdict(int)
    for posting in Posting.objects.filter(entry__payment=payment).select_related("account"):
        totals[posting.account.code] += posting.amount
    return {code: amount for code, amount in totals.items() if amount}


def test_a_captured_payment_is_held_by_its_provider_and_owed_as_service(payment):
    [entry] = JournalEntry.objects.filter(payment=payment)

    assert (entry.kind, entry.source) == (EntryKind.PAYMENT_CAPTURED, f"payment:{payment.pk}")
    assert entry.effective_at == payment.paid_at
    assert balances(payment) == {"provider_clearing:stripe": 39900, "deferred_revenue": -39900}
    plan = RecognitionPlan.objects.get(payment=payment)
    assert (plan.deferred, plan.recognized) == (39900, 0)
    assert (plan.start_day, plan.end_day) == (payment.period_start.date(), payment.period_end.date())


def test_a_refund_before_any_revenue_is_earned_comes_out_of_deferred_revenue(payment):
    refund_create(
        payment=payment, amount=10000, reason="requested_by_customer", created_by=support_staff("agent")
    )

    assert balances(payment) == {"provider_clearing:stripe": 29900, "deferred_revenue": -29900}
    assert RecognitionPlan.objects.get(payment=payment).deferred == 29900


def test_a_full_refund_after_some_days_earned_sends_those_to_refunds(payment):
    # Ten days of the month earned (posted as the daily job would).
    plan = RecognitionPlan.objects.get(payment=payment)
    entry_post(
        source=f"recognition:{payment.pk}:test",
        kind=EntryKind.REVENUE_RECOGNIZED,
        currency="RUB",
        effective_at=payment.paid_at,
        lines=[("deferred_revenue", 12000), ("revenue", -12000)],
        payment=payment,
    )
    RecognitionPlan.objects.filter(pk=plan.pk).update(recognized=12000, deferred=27900)

    refund_create(
        payment=payment, amount=39900, reason="requested_by_customer", created_by=support_staff("agent")
    )

    assert balances(payment) == {"revenue": -12000, "refunds": 12000}
    assert RecognitionPlan.objects.get(payment=payment).deferred == 0


def test_a_replayed_fact_posts_nothing_twice(payment):
    from ledger.services.postings import payment_captured

    payment_captured(payment=payment)
    payment_captured(payment=payment)

    assert JournalEntry.objects.filter(payment=payment).count() == 1
    assert balances(payment) == {"provider_clearing:stripe": 39900, "deferred_revenue": -39900}


def test_an_unbalanced_entry_is_never_written(payment):
    with pytest.raises(LedgerUnbalanced):
        entry_post(
            source="broken",
            kind=EntryKind.REVERSAL,
            currency="RUB",
            effective_at=payment.paid_at,
            lines=[("revenue", 100), ("deferred_revenue", -99)],
        )
    assert not JournalEntry.objects.filter(source="broken").exists()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_posting SET amount = amount + 1",
        "DELETE FROM ledger_posting",
        "UPDATE ledger_journalentry SET memo = 'edited'",
        "DELETE FROM ledger_journalentry",
    ],
)
def test_the_database_refuses_to_edit_the_books(payment, statement):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


def test_the_database_refuses_an_entry_that_does_not_balance_when_it_commits(payment):
    account_id = Posting.objects.filter(entry__payment=payment).values_list("account_id", flat=True).first()
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        entry = JournalEntry.objects.create(
            kind=EntryKind.REVERSAL, source="sneaked-in", effective_at=payment.paid_at
        )
        Posting.objects.create(
            entry=entry, account_id=account_id, amount=1, currency="RUB", effective_at=payment.paid_at
        )
        # What COMMIT would do: the balance trigger is deferred to the end of the transaction.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS posting_entry_balanced IMMEDIATE")


def test_each_goodwill_extension_of_a_period_stretches_what_is_left_of_its_revenue(payment):
    from billing.services import subscription_extend

    agent = support_staff("agent")
    for days in (5, 3):
        subscription_extend(subscription=payment.subscription, days=days, actor=agent, reason="outage")
        payment.subscription.refresh_from_db()

    plan = RecognitionPlan.objects.get(payment=payment)
    assert plan.end_day == payment.period_end.date() + timedelta(days=8)
    assert (plan.deferred, plan.recognized) == (39900, 0)


def test_a_refund_told_twice_moves_the_plan_once(payment):
    from ledger.services.postings import payment_refunded

    refund_create(
        payment=payment, amount=10000, reason="requested_by_customer", created_by=support_staff("agent")
    )
    payment.refresh_from_db()
    payment_refunded(payment=payment, amount=10000)  # the same fact again

    assert balances(payment) == {"provider_clearing:stripe": 29900, "deferred_revenue": -29900}
    assert RecognitionPlan.objects.get(payment=payment).deferred == 29900
