"""Paid periods are earned day by day: the daily job moves them from deferred revenue to revenue."""

import logging
from collections import defaultdict
from datetime import date, datetime, timedelta
from itertools import count
from typing import Any, cast

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils.module_loading import import_string

from accounts.tests.roles import staff_member
from billing.models import SubscriptionStatus
from billing.services import subscription_extend
from core import clock
from core.days import utc_midnight
from core.money import format_money
from ledger import accounts_chart as chart
from ledger.models import EntryKind, JournalEntry, Posting, RecognitionPlan
from ledger.services import postings
from ledger.services.recognition import (
    RecognitionDayNotOver,
    RecognitionResult,
    plan_recognized_through,
    plan_start,
    recognition_source,
    revenue_recognize,
)
from ledger.tasks import recognize_revenue
from payments import facts as payments_facts
from payments.models import CheckoutSession, Payment, PaymentStatus
from payments.services.checkout import checkout_sync
from payments.services.refunds.staff import refund_create
from payments.tests.factories import PaymentFactory
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


def paid_period(*, amount: int, start: date, days: int, currency: str = "RUB") -> Payment:
    """A payment for `days` UTC days from `start`, captured and given its line as the listeners do."""
    payment = cast(
        Payment,
        PaymentFactory(
            amount=amount,
            currency=currency,
            paid_at=utc_midnight(start),
            period_start=utc_midnight(start),
            period_end=utc_midnight(start + timedelta(days=days)),
        ),
    )
    postings.payment_captured(payment=payment)
    plan_start(payment=payment)
    return payment


def recognize_plan_by_plan(*, day: date) -> RecognitionResult:
    """The daily job as it posted before its batch path: one `entry_post` and one save per plan.

    Kept here as the reference the batch path must match, entry for entry and plan for plan.
    """
    result = RecognitionResult(day=day)
    plans = RecognitionPlan.objects.select_for_update().filter(deferred__gt=0, start_day__lte=day)
    for plan in plans.select_related("payment").order_by("payment_id"):
        result.plans += 1
        through = day if plan.recognized_through is None else max(plan.recognized_through, day)
        amount = plan_recognized_through(plan, day) - plan.recognized
        if amount <= 0:
            if through != plan.recognized_through:
                plan.recognized_through = through
                plan.save(update_fields=["recognized_through", "updated_at"])
            continue
        entry = postings.entry_post(
            source=recognition_source(payment_id=plan.payment_id, day=day),
            kind=EntryKind.REVENUE_RECOGNIZED,
            currency=plan.currency,
            effective_at=utc_midnight(day),
            lines=[(chart.DEFERRED_REVENUE, amount), (chart.REVENUE, -amount)],
            payment=plan.payment,
        )
        if entry is None:
            continue
        plan.recognized += amount
        plan.deferred -= amount
        plan.recognized_through = through
        plan.save(update_fields=["recognized", "deferred", "recognized_through", "updated_at"])
        result.entries += 1
        result.recognized[plan.currency] = result.recognized.get(plan.currency, 0) + amount
    return result


def books_and_plans() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return every entry with its postings, and every plan, as an accountant would compare them.

    Everything written but the row ids and the instants of writing (`created_at`, `updated_at`).
    """
    entries = [
        (
            entry.source,
            entry.kind,
            entry.effective_at,
            entry.payment_id,
            entry.memo,
            sorted(
                (p.account.code, p.account.currency, p.currency, p.amount, p.effective_at)
                for p in entry.postings.all()
            ),
        )
        for entry in JournalEntry.objects.prefetch_related("postings__account").order_by("source")
    ]
    plans = list(
        RecognitionPlan.objects.order_by("payment_id").values_list(
            "payment_id",
            "currency",
            "start_day",
            "end_day",
            "base_recognized",
            "base_amount",
            "recognized",
            "recognized_through",
            "deferred",
        )
    )
    return entries, plans


def recognize_as_plan_by_plan(*, day: date, batch_size: int) -> RecognitionResult:
    """Run the job for `day`; assert it wrote and reported what posting plan by plan would have."""
    with transaction.atomic():
        expected_result = recognize_plan_by_plan(day=day)
        expected = books_and_plans()
        transaction.set_rollback(True)

    result = revenue_recognize(day=day, batch_size=batch_size)

    assert books_and_plans() == expected
    assert result == expected_result
    return result


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


class TestBatches:
    """The job posts a batch's plans with a few statements: what it writes is what one by one wrote."""

    @pytest.fixture(autouse=True)
    def _balance_checked_on_insert(self):
        # The database checks each entry balances as it is written, not only at commit (which
        # a test rolled back never reaches).
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS posting_entry_balanced IMMEDIATE")

    def test_a_run_posts_what_posting_plan_by_plan_posted(self, caplog):
        day = today() - timedelta(days=2)
        # Already recognised through a later day than the one run: nothing new, nothing moves.
        ahead = paid_period(amount=39900, start=day - timedelta(days=5), days=30)
        revenue_recognize(day=day + timedelta(days=1))
        # Several currencies, lines recognised through an earlier day already or not at all, a
        # year, and amounts that do not divide.
        periods = [
            paid_period(amount=39900 + n, start=day - timedelta(days=4 * n), days=30) for n in range(5)
        ]
        periods += [
            paid_period(amount=999, currency="EUR", start=day - timedelta(days=n), days=31) for n in range(3)
        ]
        periods.append(paid_period(amount=399000, start=day - timedelta(days=40), days=365))
        revenue_recognize(day=day - timedelta(days=3))
        # Never run before and over by the day: earned in full.
        periods.append(paid_period(amount=59900, start=day - timedelta(days=45), days=30))
        # Too little to earn a minor unit yet: where the job stands moves all the same.
        tiny = paid_period(amount=1, start=day - timedelta(days=1), days=30)
        # Its day is in the books already, yet not in its plan: left alone and reported.
        anomaly = paid_period(amount=39900, start=day - timedelta(days=3), days=30)
        postings.entry_post(
            source=recognition_source(payment_id=anomaly.pk, day=day),
            kind=EntryKind.REVENUE_RECOGNIZED,
            currency="RUB",
            effective_at=utc_midnight(day),
            lines=[(chart.DEFERRED_REVENUE, 100), (chart.REVENUE, -100)],
            payment=anomaly,
        )
        # Its line starts after the day: not looked at.
        later = paid_period(amount=39900, start=day + timedelta(days=1), days=30)

        with caplog.at_level(logging.ERROR, logger="ledger.services.recognition"):
            result = recognize_as_plan_by_plan(day=day, batch_size=3)

        assert result.plans == len(periods) + 3  # `ahead`, `tiny` and `anomaly`; not `later`
        assert result.entries == len(periods)
        assert set(result.recognized) == {"RUB", "EUR"}
        plans = RecognitionPlan.objects.in_bulk([ahead.pk, tiny.pk, anomaly.pk, later.pk])
        assert plans[ahead.pk].recognized_through == day + timedelta(days=1)
        assert (plans[tiny.pk].recognized, plans[tiny.pk].recognized_through) == (0, day)
        assert (plans[anomaly.pk].recognized, plans[anomaly.pk].recognized_through) == (0, None)
        assert plans[later.pk].recognized_through is None
        assert (
            JournalEntry.objects.filter(source=recognition_source(payment_id=anomaly.pk, day=day)).count()
            == 1
        )
        assert [record.getMessage() for record in caplog.records] == [
            f"recognition of payment {anomaly.pk} for {day} is in the books but not in its plan"
        ]

    def test_a_run_again_or_of_an_earlier_day_writes_what_plan_by_plan_wrote(self):
        day = today() - timedelta(days=1)
        for n in range(4):
            paid_period(amount=39900 + n, start=day - timedelta(days=10 + n), days=30)
        revenue_recognize(day=day)

        again = recognize_as_plan_by_plan(day=day, batch_size=3)
        earlier = recognize_as_plan_by_plan(day=day - timedelta(days=5), batch_size=3)

        assert (again.plans, again.entries, earlier.entries) == (4, 0, 0)

    def test_a_batch_of_fifty_plans_takes_no_more_queries_than_one_of_five(self):
        day = today() - timedelta(days=1)

        def queries_of_a_run(plans: int) -> int:
            with transaction.atomic():
                for n in range(plans):
                    # One in five too small to earn a minor unit on its first day: it only moves.
                    paid_period(
                        amount=1 if n % 5 == 0 else 39900 + n,
                        currency=("RUB", "EUR")[n % 2],
                        start=day - timedelta(days=n % 5),
                        days=30,
                    )
                with CaptureQueriesContext(connection) as captured:
                    result = revenue_recognize(day=day)
                assert (result.plans, result.entries) == (plans, plans - plans // 5)
                transaction.set_rollback(True)
            return len(captured)

        assert queries_of_a_run(50) <= queries_of_a_run(5)

    def test_an_unbalanced_entry_among_many_is_refused_and_none_of_them_written(self):
        payment = paid_period(amount=39900, start=today() - timedelta(days=3), days=30)
        drafts = [
            postings.EntryDraft(
                source=f"test:{n}",
                kind=EntryKind.REVENUE_RECOGNIZED,
                currency="RUB",
                effective_at=utc_midnight(today()),
                lines=[(chart.DEFERRED_REVENUE, 100), (chart.REVENUE, -100 + n)],
                payment_id=payment.pk,
            )
            for n in range(2)
        ]

        with pytest.raises(postings.LedgerUnbalanced):
            postings.entries_post(drafts=drafts)

        assert not JournalEntry.objects.filter(source__startswith="test:").exists()


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
