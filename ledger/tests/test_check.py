"""`ledger_check` finds the books clean after real money moved, and reports what was tampered with."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.tests.roles import staff_member
from billing.tests.conftest import monthly_tariff, paid_subscription
from core import clock
from core.days import utc_yesterday
from ledger.models import EntryKind, JournalEntry, LedgerCheckRun, Posting, RecognitionPlan
from ledger.services.checks import ledger_check
from ledger.services.postings import entry_post
from ledger.services.recognition import revenue_recognize
from ledger.tasks import check_ledger
from payments.models import PAID_STATUSES, Payment, PaymentStatus
from payments.services.refunds.staff import refund_create
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.factories import PaymentFactory
from payments.tests.refund_helpers import support_staff

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_provider")]
__all__ = ["monthly_tariff", "paid_subscription"]  # the subscription engine's fixtures, used here


@pytest.fixture
def journey(paid_subscription) -> list[Payment]:
    """Pay a month, renew it with the billing clock moved on, refund 100.00 of the renewal, earn a day."""
    subscription = paid_subscription()
    clock.advance(timedelta(days=32))
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
    renewal = Payment.objects.get(subscription=subscription, kind="renewal")
    refund_create(
        payment=renewal, amount=10000, reason="requested_by_customer", created_by=support_staff("agent")
    )
    clock.advance(timedelta(days=2))
    revenue_recognize(day=utc_yesterday())
    return list(Payment.objects.filter(subscription=subscription).order_by("created_at"))


def check_json() -> tuple[dict, str | None]:
    """Run `ledger_check --json`; return what it printed and its error, if it exited non-zero."""
    out = StringIO()
    try:
        call_command("ledger_check", "--json", stdout=out)
    except CommandError as exc:
        return json.loads(out.getvalue()), str(exc)
    return json.loads(out.getvalue()), None


def test_the_books_are_clean_after_pay_renew_and_a_partial_refund(journey):
    first, renewal = journey

    printed, error = check_json()

    assert error is None
    assert printed["balanced"] is True
    assert printed["mismatches"] == []
    assert printed["unbalanced_entries"] == 0
    assert printed["entries"] == JournalEntry.objects.count() >= 4
    rub = printed["balances"]["RUB"]
    # The provider holds what was paid less what was given back; the accounts sum to zero.
    assert rub["provider_clearing:stripe"] == 39900 + 39900 - 10000
    assert sum(rub.values()) == 0
    # Revenue earned and still deferred are what the payments' plans say.
    plans = RecognitionPlan.objects.filter(payment__in=journey)
    assert rub["revenue"] == -sum(plan.recognized for plan in plans) <= -first.amount
    assert rub["deferred_revenue"] == -sum(plan.deferred for plan in plans)
    # The 100.00 was refunded before any of the renewal's days were earned: none of it is earned money.
    assert "refunds" not in rub
    assert rub["revenue"] + rub["deferred_revenue"] == -(first.amount + renewal.amount - 10000)


def test_json_prints_exactly_one_object_with_the_agreed_keys(journey):
    out = StringIO()
    call_command("ledger_check", "--json", stdout=out)

    printed = json.loads(out.getvalue())  # one object, nothing else on stdout
    assert set(printed) == {"balanced", "entries", "unbalanced_entries", "mismatches", "balances"}
    assert isinstance(printed["entries"], int)
    assert all(isinstance(amount, int) for codes in printed["balances"].values() for amount in codes.values())


def test_the_text_output_says_the_books_agree(journey):
    out = StringIO()
    call_command("ledger_check", stdout=out)

    assert "The books balance and agree with the payments." in out.getvalue()


def test_an_extra_balanced_entry_for_a_payment_is_reported_and_fails_the_check(journey):
    renewal = journey[1]
    # Balanced, so the database takes it: only the comparison with the payments can see it.
    entry_post(
        source=f"refund:{renewal.pk}:sneaked",
        kind=EntryKind.REFUND,
        currency="RUB",
        effective_at=clock.now(),
        lines=[("deferred_revenue", 500), ("provider_clearing:stripe", -500)],
        payment=renewal,
    )

    printed, error = check_json()

    assert error is not None
    assert printed["balanced"] is True  # every entry still sums to zero
    found = {(m["check"], m["subject"]) for m in printed["mismatches"]}
    assert ("refund_amount", f"payment:{renewal.pk}") in found
    assert ("plan_deferred", f"payment:{renewal.pk}") in found
    [refunded] = [m for m in printed["mismatches"] if m["check"] == "refund_amount"]
    assert (refunded["expected"], refunded["found"], refunded["currency"]) == (10000, 10500, "RUB")


def test_a_second_capture_of_a_payment_is_reported(journey):
    first = journey[0]
    entry_post(
        source=f"payment:{first.pk}:again",
        kind=EntryKind.PAYMENT_CAPTURED,
        currency="RUB",
        effective_at=clock.now(),
        lines=[("provider_clearing:stripe", first.amount), ("deferred_revenue", -first.amount)],
        payment=first,
    )

    result = ledger_check()

    assert not result.clean
    assert ("capture_duplicated", f"payment:{first.pk}", 1, 2) in {
        (m.check, m.subject, m.expected, m.found) for m in result.mismatches
    }


def test_a_payment_marked_paid_without_any_entry_is_reported(journey):
    # Written behind the services' back: no fact recorded, so the ledger never heard of it.
    ghost = PaymentFactory(subscription=journey[0].subscription, amount=777, status="pending")
    Payment.objects.filter(pk=ghost.pk).update(status=PaymentStatus.SUCCEEDED, paid_at=clock.now())

    printed, error = check_json()

    assert error is not None
    found = {(m["check"], m["subject"]): m for m in printed["mismatches"]}
    assert found[("capture_missing", f"payment:{ghost.pk}")]["expected"] == 777
    assert ("plan_missing", f"payment:{ghost.pk}") in found


def test_an_entry_for_a_payment_that_took_no_money_is_an_orphan(journey):
    unpaid = PaymentFactory(subscription=journey[0].subscription, status="failed", amount=100)
    entry_post(
        source=f"payment:{unpaid.pk}",
        kind=EntryKind.PAYMENT_CAPTURED,
        currency="RUB",
        effective_at=clock.now(),
        lines=[("provider_clearing:stripe", 100), ("deferred_revenue", -100)],
        payment=unpaid,
    )

    checks = {(m.check, m.subject.split(" ")[-1]) for m in ledger_check().mismatches}

    assert ("entry_for_unpaid_payment", f"payment:{unpaid.pk}") in checks
    assert unpaid.status not in PAID_STATUSES


def test_the_daily_task_stores_the_run_for_admin(journey):
    outcome = check_ledger()

    run = LedgerCheckRun.objects.get(pk=outcome["run"])
    assert (run.balanced, run.mismatch_count, run.is_clean) == (True, 0, True)
    assert run.balances["RUB"]["provider_clearing:stripe"] == 39900 + 39900 - 10000


@pytest.mark.parametrize("role", ["Accounting", "Support"])
def test_accounting_and_support_read_the_runs_in_admin(journey, client, role):
    run = LedgerCheckRun.objects.get(pk=check_ledger()["run"])
    client.force_login(staff_member(role))

    listing = client.get("/admin/ledger/ledgercheckrun/")
    page = client.get(f"/admin/ledger/ledgercheckrun/{run.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert "provider_clearing:stripe" in page.content.decode()
    assert client.post(f"/admin/ledger/ledgercheckrun/{run.pk}/delete/").status_code == 403


def test_a_manager_does_not_see_the_runs(journey, client):
    client.force_login(staff_member("Manager"))

    assert client.get("/admin/ledger/ledgercheckrun/").status_code == 403


def test_an_entry_that_does_not_balance_is_reported_even_if_the_database_let_it_in(journey):
    first = journey[0]
    with connection.cursor() as cursor:
        # As if the trigger had been dropped (rolled back with the test's transaction); the
        # journey's own checks, deferred to the commit, are run first.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE ledger_posting DISABLE TRIGGER posting_entry_balanced")
    entry = JournalEntry.objects.create(kind=EntryKind.REVERSAL, source="half", effective_at=clock.now())
    account_id = Posting.objects.filter(entry__payment=first).values_list("account_id", flat=True).first()
    Posting.objects.create(
        entry=entry, account_id=account_id, amount=5, currency="RUB", effective_at=clock.now()
    )

    printed, error = check_json()

    assert error is not None
    assert (printed["balanced"], printed["unbalanced_entries"]) == (False, 1)
    assert {
        "check": "entry_unbalanced",
        "subject": f"entry:{entry.pk} half",
        "currency": "RUB",
        "expected": 0,
        "found": 5,
    } in printed["mismatches"]
