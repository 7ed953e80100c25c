"""Paid periods are earned day by day: the daily job moves them from deferred revenue to revenue."""

from collections import defaultdict
from datetime import date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils.module_loading import import_string

from accounts.tests.roles import staff_member
from billing.models import SubscriptionStatus
from billing.services import subscription_extend
from core import clock
from core.days import utc_midnight
from core.money import format_money
from ledger.models import EntryKind, JournalEntry, Posting, RecognitionPlan
from ledger.services.recognition import RecognitionDayNotOver, revenue_recognize
from ledger.tasks import recognize_revenue
from payments import facts as payments_facts
from payments.models import CheckoutSession, Payment, PaymentStatus
from payments.services.checkout import checkout_sync
from payments.services.refunds.staff import refund_create
from tariffs.models import PeriodUnit
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db
_agents = count()


def subscribe(viewer_client: Any, memory_provider: Any, *, user_id: str, tariff: str) -> Payment:
    """Subscribe a viewer to a tariff (its slug) and pay at the in-memory provider; return the payment."""
    body = viewer_client(user_id).post("/api/v1/subscriptions/", {"tariff": tariff}, format="json").json()
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    assert checkout.provider_session_id is not None
    memory_provider.pay(checkout.provider_session_id)
    checkout_sync(provider_session_id=checkout.provider_session_id)
    return Payment.objects.get(checkout_sessions=checkout)


def move_to(moment: datetime) -> None:
    """Move the billing clock so that it reads `moment` (never backwards)."""
    clock.advance(max(moment - clock.now(), timedelta(0)))


def today() -> date:
    return clock.now().date()


def balances(payment: Payment) -> dict[str, int]:
    """Return each account's balance from the payment's entries (debit +), leaving out zeros."""
    totals: dict[str, int] = defaultdict(int)
    for posting in Posting.objects.filter(entry__payment=payment).select_related("account"):
        totals[posting.account.code] += posting.amount
    return {code: amount for code, amount in totals.items() if amount}


def revenue(payment: Payment) -> int:
    """Return the revenue recognised for a payment (shown positive, as on a report)."""
    return -balances(payment).get("revenue", 0)


def period_days(payment: Payment) -> int:
    assert payment.period_start is not None and payment.period_end is not None
    return (payment.period_end.date() - payment.period_start.date()).days


def first_day(payment: Payment) -> date:
    assert payment.period_start is not None
    return payment.period_start.date()


def refund(payment: Payment, amount: int, *, end_access: bool | None = None) -> None:
    refund_create(
        payment=payment,
        amount=amount,
        reason="requested_by_customer",
        end_access=end_access,
        created_by=staff_member("Support", f"agent{next(_agents)}"),
    )


@pytest.fixture
def monthly(memory_provider) -> str:
    """The slug of "monthly": 399.00 RUB a month."""
    TariffFactory(slug="monthly", amount=39900, currency="RUB")
    return "monthly"


@pytest.fixture
def payment(viewer_client, memory_provider, monthly) -> Payment:
    """399.00 RUB paid now for a month of "monthly"."""
    return subscribe(viewer_client, memory_provider, user_id="alice", tariff=monthly)


class TestStraightLine:
    def test_a_month_is_earned_day_by_day_to_the_minor_unit(self, payment):
        days, start = period_days(payment), first_day(payment)
        move_to(utc_midnight(start + timedelta(days=days + 1)))

        for k in range(1, days + 1):
            result = revenue_recognize(day=start + timedelta(days=k - 1))
            assert result.entries == 1
            assert revenue(payment) == 39900 * k // days

        assert balances(payment) == {"provider_clearing:stripe": 39900, "revenue": -39900}
        plan = RecognitionPlan.objects.get(payment=payment)
        assert (plan.recognized, plan.deferred) == (39900, 0)
        entries = JournalEntry.objects.filter(payment=payment, kind=EntryKind.REVENUE_RECOGNIZED)
        assert entries.count() == days
        # Each day's revenue is in the books on that UTC day.
        assert {entry.effective_at for entry in entries} == {
            utc_midnight(start + timedelta(days=k)) for k in range(days)
        }
        assert {entry.source for entry in entries} == {
            f"recognition:{payment.pk}:{start + timedelta(days=k)}" for k in range(days)
        }

    def test_the_same_day_again_or_an_earlier_day_after_a_later_one_posts_nothing(self, payment):
        start = first_day(payment)
        move_to(utc_midnight(start + timedelta(days=5)))
        revenue_recognize(day=start + timedelta(days=3))
        earned = revenue(payment)

        again = revenue_recognize(day=start + timedelta(days=3))
        earlier = revenue_recognize(day=start + timedelta(days=1))

        assert (again.entries, earlier.entries) == (0, 0)
        assert revenue(payment) == earned == 39900 * 4 // period_days(payment)
        assert JournalEntry.objects.filter(kind=EntryKind.REVENUE_RECOGNIZED).count() == 1

    def test_a_day_before_the_period_posts_nothing(self, payment):
        result = revenue_recognize(day=first_day(payment) - timedelta(days=1))

        assert (result.plans, result.entries) == (0, 0)
        assert revenue(payment) == 0

    def test_a_period_wholly_before_the_day_run_is_earned_in_full_that_day(self, payment):
        end = first_day(payment) + timedelta(days=period_days(payment))
        move_to(utc_midnight(end + timedelta(days=3)))

        result = revenue_recognize(day=end + timedelta(days=1))

        assert result.recognized == {"RUB": 39900}
        assert revenue(payment) == 39900
        assert RecognitionPlan.objects.get(payment=payment).deferred == 0
        # A plan with nothing deferred is not looked at again.
        assert revenue_recognize(day=end + timedelta(days=2)).plans == 0

    def test_a_day_that_is_not_over_is_refused(self, payment):
        with pytest.raises(RecognitionDayNotOver):
            revenue_recognize(day=today())
        assert revenue(payment) == 0

    def test_plans_are_posted_in_batches_and_all_of_them_are_reached(
        self, viewer_client, memory_provider, monthly
    ):
        payments = [
            subscribe(viewer_client, memory_provider, user_id=f"viewer{n}", tariff=monthly) for n in range(5)
        ]
        move_to(clock.now() + timedelta(days=2))

        result = revenue_recognize(day=today() - timedelta(days=1), batch_size=2)

        assert (result.plans, result.entries) == (5, 5)
        assert sum(revenue(p) for p in payments) == result.recognized["RUB"] > 0

    def test_a_yearly_period_is_earned_over_its_days(self, viewer_client, memory_provider):
        TariffFactory(slug="yearly", amount=399000, period_unit=PeriodUnit.YEAR)
        payment = subscribe(viewer_client, memory_provider, user_id="bob", tariff="yearly")
        days = period_days(payment)
        assert days in (365, 366)
        move_to(utc_midnight(first_day(payment) + timedelta(days=100)))

        revenue_recognize(day=first_day(payment) + timedelta(days=99))

        assert revenue(payment) == 399000 * 100 // days


class TestRefunds:
    def test_a_refund_that_ends_access_leaves_the_rest_to_the_next_run(self, payment):
        days, start = period_days(payment), first_day(payment)
        move_to(utc_midnight(start + timedelta(days=10)) + timedelta(hours=9))
        revenue_recognize(day=start + timedelta(days=9))
        earned = 39900 * 10 // days

        refund(payment, 10000, end_access=True)

        assert Payment.objects.get(pk=payment.pk).subscription.status == SubscriptionStatus.CANCELED
        # The refund came out of what was still deferred; nothing earned was given back.
        assert balances(payment) == {
            "provider_clearing:stripe": 29900,
            "deferred_revenue": -(29900 - earned),
            "revenue": -earned,
        }
        move_to(clock.now() + timedelta(days=1))
        result = revenue_recognize(day=start + timedelta(days=10))

        assert result.recognized == {"RUB": 29900 - earned}
        assert balances(payment) == {"provider_clearing:stripe": 29900, "revenue": -29900}
        assert RecognitionPlan.objects.get(payment=payment).deferred == 0

    def test_a_partial_refund_that_keeps_access_follows_the_line_to_the_period_end(self, payment):
        days, start = period_days(payment), first_day(payment)
        move_to(utc_midnight(start + timedelta(days=10)) + timedelta(hours=9))
        revenue_recognize(day=start + timedelta(days=9))
        earned = 39900 * 10 // days

        refund(payment, 10000, end_access=False)
        move_to(utc_midnight(start + timedelta(days=days + 1)))
        left = 29900 - earned

        revenue_recognize(day=start + timedelta(days=10))
        assert revenue(payment) == earned + left * 1 // (days - 10)
        revenue_recognize(day=start + timedelta(days=days - 2))
        assert revenue(payment) == earned + left * (days - 11) // (days - 10)
        revenue_recognize(day=start + timedelta(days=days - 1))
        assert revenue(payment) == 29900
        assert Payment.objects.get(pk=payment.pk).subscription.status == SubscriptionStatus.ACTIVE

    def test_a_full_refund_after_days_earned_gives_those_back_through_refunds(self, payment):
        start = first_day(payment)
        move_to(utc_midnight(start + timedelta(days=10)))
        revenue_recognize(day=start + timedelta(days=9))
        earned = revenue(payment)

        refund(payment, 39900)
        move_to(clock.now() + timedelta(days=2))
        revenue_recognize(day=today() - timedelta(days=1))

        assert balances(payment) == {"revenue": -earned, "refunds": earned}
        plan = RecognitionPlan.objects.get(payment=payment)
        assert (plan.recognized, plan.deferred) == (earned, 0)

    def test_a_refund_of_a_payment_the_books_never_saw_books_its_capture_first(self, memory_provider):
        from payments.tests.factories import PaymentFactory

        # Paid before the ledger existed: no entry, no plan.
        payment = PaymentFactory(amount=39900, currency="RUB", paid_at=clock.now())
        assert not JournalEntry.objects.filter(payment=payment).exists()
        Payment.objects.filter(pk=payment.pk).update(
            refunded_amount=10000, status=PaymentStatus.PARTIALLY_REFUNDED
        )
        payment.refresh_from_db()

        payments_facts.payment_refunded.record(payment=payment, amount=10000)

        assert JournalEntry.objects.filter(source=f"payment:{payment.pk}").exists()
        assert balances(payment) == {"provider_clearing:stripe": 29900, "deferred_revenue": -29900}
        plan = RecognitionPlan.objects.get(payment=payment)
        assert (plan.recognized, plan.deferred) == (0, 29900)


class TestExtensions:
    def test_an_extension_spreads_what_is_left_over_the_longer_period(self, payment):
        days, start = period_days(payment), first_day(payment)
        move_to(utc_midnight(start + timedelta(days=10)) + timedelta(hours=1))
        revenue_recognize(day=start + timedelta(days=9))
        earned = 39900 * 10 // days

        subscription_extend(
            subscription=payment.subscription, days=5, actor=staff_member("Support"), reason="Outage"
        )
        move_to(utc_midnight(start + timedelta(days=days + 6)))
        left, longer = 39900 - earned, days + 5 - 10

        revenue_recognize(day=start + timedelta(days=10))
        assert revenue(payment) == earned + left // longer
        revenue_recognize(day=start + timedelta(days=days - 1))
        assert revenue(payment) == earned + left * (days - 10) // longer < 39900
        revenue_recognize(day=start + timedelta(days=days + 4))
        assert revenue(payment) == 39900


class TestAdapters:
    def test_the_command_posts_a_day_and_says_what_it_posted(self, payment, capsys):
        move_to(clock.now() + timedelta(days=2))
        day = first_day(payment)

        call_command("recognize_revenue", "--day", day.isoformat())

        out = capsys.readouterr().out
        assert f"Revenue recognised for {day.isoformat()} (UTC): 1 entries" in out
        assert f"RUB: {format_money(39900 // period_days(payment), 'RUB')}" in out
        assert revenue(payment) == 39900 // period_days(payment)

    def test_the_command_runs_yesterday_by_default_and_refuses_a_day_not_over(self, payment, capsys):
        move_to(clock.now() + timedelta(days=1))
        call_command("recognize_revenue")
        assert f"for {today() - timedelta(days=1)} (UTC)" in capsys.readouterr().out

        with pytest.raises(CommandError, match="not over yet"):
            call_command("recognize_revenue", "--day", today().isoformat())
        with pytest.raises(CommandError, match="YYYY-MM-DD"):
            call_command("recognize_revenue", "--day", "yesterday")

    def test_the_task_recognises_yesterday_on_the_billing_clock(self, payment):
        move_to(clock.now() + timedelta(days=1))

        summary = recognize_revenue()

        assert summary["day"] == (today() - timedelta(days=1)).isoformat()
        assert summary["entries"] == 1
        assert summary["recognized"] == {"RUB": revenue(payment)}

    def test_beat_runs_the_task_daily_after_midnight_utc(self):
        entry = settings.CELERY_BEAT_SCHEDULE["recognize-revenue"]

        assert import_string(entry["task"]) is recognize_revenue
        assert (entry["schedule"].hour, entry["schedule"].minute) == ({0}, {10})
