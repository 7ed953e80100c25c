"""Accounting's reports read the books as an accountant closes a month: per currency, balanced.

The journey: a viewer pays 399.00 RUB and another 9.99 USD for a month, ten days are
recognised by the daily job, then 100.00 RUB is refunded.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from itertools import pairwise

import pytest
from django.core.management import call_command

from billing.models import Subscription
from core import clock
from ledger.selectors import clearing_balances, deferred_revenue_schedule, revenue_by_month, trial_balance
from ledger.services.recognition import revenue_recognize
from payments.models import CheckoutSession, Payment
from payments.services.checkout import checkout_sync
from payments.services.refunds.staff import refund_create
from payments.tests.refund_helpers import support_staff
from tariffs.models import PeriodUnit
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

RECOGNISED_DAYS = 10
REFUNDED = 10000


def subscribe_and_pay(viewer_client, memory_provider, *, user_id: str, tariff: str) -> Payment:
    """Subscribe a viewer to a tariff through the API and pay its page at the in-memory provider."""
    body = viewer_client(user_id).post("/api/v1/subscriptions/", {"tariff": tariff}, format="json").json()
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    assert checkout.provider_session_id is not None
    memory_provider.pay(checkout.provider_session_id)
    checkout_sync(provider_session_id=checkout.provider_session_id)
    subscription = Subscription.objects.get(pk=checkout.subscription_id)
    return Payment.objects.get(subscription=subscription, checkout_sessions=checkout)


def earned(payment: Payment, days: int) -> int:
    """Return what the straight line over the payment's UTC days has earned after `days` of them."""
    assert payment.period_start is not None and payment.period_end is not None
    period = (payment.period_end.date() - payment.period_start.date()).days
    return payment.amount * days // period


@dataclass
class Journey:
    rubles: Payment
    dollars: Payment
    paid_day: date
    before_payments: datetime
    before_refund: datetime

    @property
    def rub_earned(self) -> int:
        return earned(self.rubles, RECOGNISED_DAYS)

    @property
    def usd_earned(self) -> int:
        return earned(self.dollars, RECOGNISED_DAYS)


@pytest.fixture
def journey(viewer_client, memory_provider) -> Journey:
    """Pay in two currencies, recognise ten days, refund part of the rouble payment."""
    TariffFactory(slug="monthly", amount=39900, currency="RUB")
    TariffFactory(slug="monthly-usd", amount=999, currency="USD")
    before_payments = clock.now()
    rubles = subscribe_and_pay(viewer_client, memory_provider, user_id="alice", tariff="monthly")
    dollars = subscribe_and_pay(viewer_client, memory_provider, user_id="bob", tariff="monthly-usd")
    paid_day = clock.now().astimezone(UTC).date()
    clock.advance(timedelta(days=RECOGNISED_DAYS))
    revenue_recognize(day=paid_day + timedelta(days=RECOGNISED_DAYS - 1))
    before_refund = clock.now()
    clock.advance(timedelta(hours=1))
    refund_create(
        payment=rubles, amount=REFUNDED, reason="requested_by_customer", created_by=support_staff("agent")
    )
    return Journey(rubles, dollars, paid_day, before_payments, before_refund)


def balances(at: datetime) -> dict[str, dict[str, tuple[int, int]]]:
    """Return the trial balance as {currency: {account: (debit, credit)}}."""
    return {
        balance.currency: {line.code: (line.debit, line.credit) for line in balance.lines}
        for balance in trial_balance(at=at)
    }


class TestTrialBalance:
    def test_every_currency_sums_to_zero_and_shows_what_each_account_holds(self, journey):
        report = trial_balance(at=clock.now())

        assert [(balance.currency, balance.balanced) for balance in report] == [("RUB", True), ("USD", True)]
        assert balances(clock.now()) == {
            "RUB": {
                "provider_clearing:stripe": (39900 - REFUNDED, 0),
                "deferred_revenue": (0, 39900 - REFUNDED - journey.rub_earned),
                "revenue": (0, journey.rub_earned),
            },
            "USD": {
                "provider_clearing:stripe": (999, 0),
                "deferred_revenue": (0, 999 - journey.usd_earned),
                "revenue": (0, journey.usd_earned),
            },
        }
        rubles = report[0]
        assert rubles.total_debit == rubles.total_credit == 39900 - REFUNDED

    def test_balances_on_the_accounts_normal_side_are_positive(self, journey):
        [rubles, _dollars] = trial_balance(at=clock.now())

        assert {line.code: line.balance for line in rubles.lines} == {
            "provider_clearing:stripe": 39900 - REFUNDED,
            "deferred_revenue": 39900 - REFUNDED - journey.rub_earned,
            "revenue": journey.rub_earned,
        }

    def test_a_balance_at_an_earlier_moment_leaves_out_what_came_later(self, journey):
        assert balances(journey.before_refund)["RUB"] == {
            "provider_clearing:stripe": (39900, 0),
            "deferred_revenue": (0, 39900 - journey.rub_earned),
            "revenue": (0, journey.rub_earned),
        }
        assert trial_balance(at=journey.before_payments) == []

    def test_the_clearing_balance_is_what_the_provider_holds_for_us_per_currency(self, journey):
        assert [(row.provider, row.currency, row.amount) for row in clearing_balances(at=clock.now())] == [
            ("stripe", "RUB", 39900 - REFUNDED),
            ("stripe", "USD", 999),
        ]


class TestDeferredRevenueSchedule:
    def test_the_schedule_adds_up_to_the_deferred_balance_of_each_currency(self, journey):
        today = clock.now().astimezone(UTC).date()
        schedules = {row.currency: row for row in deferred_revenue_schedule(today=today)}

        assert set(schedules) == {"RUB", "USD"}
        assert schedules["RUB"].deferred == 39900 - REFUNDED - journey.rub_earned
        assert schedules["USD"].deferred == 999 - journey.usd_earned
        for schedule in schedules.values():
            assert schedule.agrees
            assert schedule.total == schedule.deferred == schedule.books
            assert len(schedule.months) == 12
            assert schedule.months[0].month == today.replace(day=1)
            # A month's plan ends within two calendar months: nothing is earned later.
            assert schedule.later == 0
            assert all(month.amount == 0 for month in schedule.months[2:])

    def test_a_yearly_plan_is_earned_month_by_month_and_the_rest_later(self, viewer_client, memory_provider):
        TariffFactory(slug="yearly", amount=365000, currency="RUB", period_unit=PeriodUnit.YEAR)
        payment = subscribe_and_pay(viewer_client, memory_provider, user_id="carol", tariff="yearly")
        assert payment.period_start is not None and payment.period_end is not None
        first, end = payment.period_start.date(), payment.period_end.date()
        days = (end - first).days

        [schedule] = deferred_revenue_schedule(today=first)

        assert schedule.total == schedule.deferred == schedule.books == 365000
        # Each month earns its days' share, the first from the day paid; what is left of the
        # year after the twelfth month is earned later.
        boundaries = [month.month for month in schedule.months[1:]] + [_next_month(schedule.months[-1].month)]
        line = [0] + [365000 * min((boundary - first).days, days) // days for boundary in boundaries]
        assert [month.amount for month in schedule.months] == [b - a for a, b in pairwise(line)]
        assert schedule.later == 365000 - line[-1]
        assert schedule.later > 0 or first.day == 1

    def test_nothing_deferred_shows_no_schedule(self):
        assert deferred_revenue_schedule(today=clock.now().date()) == []


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


class TestRevenueByMonth:
    def test_accrual_revenue_stands_next_to_cash_received_per_currency(self, journey):
        today = clock.now().astimezone(UTC).date()
        rows = revenue_by_month(date_from=journey.paid_day, date_to=today)

        def totals(currency: str) -> tuple[int, int, int, int, int, int]:
            mine = [row for row in rows if row.currency == currency]
            return (
                sum(row.recognized for row in mine),
                sum(row.refunded_earned for row in mine),
                sum(row.revenue for row in mine),
                sum(row.cash_in for row in mine),
                sum(row.cash_refunded for row in mine),
                sum(row.cash for row in mine),
            )

        assert totals("RUB") == (journey.rub_earned, 0, journey.rub_earned, 39900, REFUNDED, 39900 - REFUNDED)
        assert totals("USD") == (journey.usd_earned, 0, journey.usd_earned, 999, 0, 999)
        months = sorted({row.month for row in rows})
        assert months[0] == journey.paid_day.replace(day=1)
        assert {row.currency for row in rows} == {"RUB", "USD"}
        # Every month of the range, for each currency, zeros included.
        assert len(rows) == 2 * len(months)

    def test_a_refund_of_money_already_earned_is_taken_off_revenue(self, journey):
        # The rest of the dollar payment, after ten days earned: what was earned goes to refunds.
        refund_create(
            payment=journey.dollars, amount=999, reason="requested_by_customer", created_by=support_staff("b")
        )
        today = clock.now().astimezone(UTC).date()

        rows = [
            row
            for row in revenue_by_month(date_from=journey.paid_day, date_to=today)
            if row.currency == "USD"
        ]

        assert sum(row.refunded_earned for row in rows) == journey.usd_earned
        assert sum(row.revenue for row in rows) == 0
        assert sum(row.cash for row in rows) == 0
        assert all(balance.balanced for balance in trial_balance(at=clock.now()))

    def test_days_outside_the_range_are_left_out(self, journey):
        before = journey.paid_day - timedelta(days=40)

        assert revenue_by_month(date_from=before, date_to=journey.paid_day - timedelta(days=1)) == []


class TestLedgerReportCommand:
    def run(self, *args: str) -> str:
        out = StringIO()
        call_command("ledger_report", *args, stdout=out)
        return out.getvalue()

    def test_the_trial_balance_prints_each_currency_and_the_clearing_balances(self, journey):
        printed = self.run("--trial-balance")

        assert "RUB" in printed and "USD" in printed
        assert "299.00 RUB" in printed  # held by the provider after the refund
        assert "9.99 USD" in printed
        assert "Held by each provider" in printed

    def test_the_trial_balance_at_a_day_before_the_payments_is_empty(self, journey):
        day = (journey.paid_day - timedelta(days=1)).isoformat()

        assert "No entry is in the books" in self.run("--trial-balance", "--at", day)

    def test_the_deferred_schedule_prints_the_deferred_total(self, journey):
        from core.money import format_money

        printed = self.run("--deferred")

        assert format_money(39900 - REFUNDED - journey.rub_earned, "RUB") in printed
        assert "later" in printed

    def test_revenue_prints_accrual_and_cash_for_the_range(self, journey):
        today = clock.now().astimezone(UTC).date()

        printed = self.run("--revenue", "--from", journey.paid_day.isoformat(), "--to", today.isoformat())

        assert "cash received" in printed
        assert "399.00 RUB" in printed
        assert "100.00 RUB" in printed

    def test_one_report_at_a_time_is_asked_for(self):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError):
            self.run("--trial-balance", "--deferred")
        with pytest.raises(CommandError):
            self.run("--revenue")
