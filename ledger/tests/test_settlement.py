"""Each fee and payout the provider books is posted once, out of its clearing account."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from core import clock
from ledger.models import EntryKind, JournalEntry
from ledger.services.checks import ledger_check
from ledger.services.settlement import provider_settlement_post
from ledger.tasks import post_provider_fees
from payments.services.refunds.staff import refund_create
from payments.tests.refund_helpers import pay, support_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def day_of_money(viewer_client, memory_provider):
    """Two payments, a partial refund and a payout, all booked by the provider today."""
    first = pay(viewer_client, memory_provider, "alice")
    pay(viewer_client, memory_provider, "bob")
    refund_create(
        payment=first, amount=10000, reason="requested_by_customer", created_by=support_staff("agent")
    )
    memory_provider.gateway.pay_out(50000, "RUB")
    return list(memory_provider.gateway.state.balance_transactions.values())


def balance(code: str, currency: str = "RUB") -> int:
    return ledger_check().balances.get(currency, {}).get(code, 0)


def test_each_fee_is_posted_once_out_of_clearing(day_of_money):
    charged = [line for line in day_of_money if line.fee]
    assert len(charged) == 2  # the two payments; the refund and the payout cost nothing

    posted = provider_settlement_post(provider="stripe", day=clock.now().date())

    assert (posted.lines, posted.fees, posted.payouts) == (4, 2, 1)
    fees = JournalEntry.objects.filter(kind=EntryKind.PROVIDER_FEE)
    assert sorted(fees.values_list("source", flat=True)) == sorted(
        f"fee:stripe:{line.id}" for line in charged
    )
    assert balance("provider_fees") == sum(line.fee for line in charged)


def test_a_payout_moves_the_money_from_clearing_to_payouts(day_of_money):
    provider_settlement_post(provider="stripe", day=clock.now().date())

    [payout] = [line for line in day_of_money if line.kind == "payout"]
    entry = JournalEntry.objects.get(kind=EntryKind.PAYOUT)
    assert entry.source == f"payout:stripe:{payout.id}"
    assert balance("payouts:stripe") == 50000
    fees = sum(line.fee for line in day_of_money)
    # What the provider still holds for us: paid, less refunded, fees and the payout.
    assert balance("provider_clearing:stripe") == 2 * 39900 - 10000 - fees - 50000


def test_reading_the_day_again_posts_nothing_twice(day_of_money):
    provider_settlement_post(provider="stripe", day=clock.now().date())
    entries = JournalEntry.objects.count()

    again = provider_settlement_post(provider="stripe", day=clock.now().date())

    assert (again.lines, again.fees, again.payouts) == (4, 0, 0)
    assert JournalEntry.objects.count() == entries
    assert ledger_check().clean


def test_another_day_has_no_lines(day_of_money):
    posted = provider_settlement_post(provider="stripe", day=clock.now().date() - timedelta(days=1))

    assert (posted.lines, posted.fees) == (0, 0)
    assert not JournalEntry.objects.filter(kind=EntryKind.PROVIDER_FEE).exists()


def test_the_daily_task_posts_yesterday_and_the_days_before(day_of_money):
    clock.advance(timedelta(days=1))

    assert post_provider_fees() == {"stripe": {"fees": 2, "payouts": 1}}
    assert post_provider_fees() == {"stripe": {"fees": 0, "payouts": 0}}
    assert JournalEntry.objects.filter(kind=EntryKind.PROVIDER_FEE).count() == 2


def test_the_command_posts_a_given_day(day_of_money):
    out = StringIO()
    call_command("post_provider_fees", "--day", clock.now().date().isoformat(), stdout=out)

    assert "4 settlement lines, 2 fees and 1 payouts posted" in out.getvalue()
    assert JournalEntry.objects.filter(kind=EntryKind.PROVIDER_FEE).count() == 2
