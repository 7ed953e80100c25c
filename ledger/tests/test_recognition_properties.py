"""Whatever viewers, staff and the clock do, after the job for day D every payment's revenue is right.

Random stories of payments (tariffs of random periods), renewals, partial and full refunds,
goodwill extensions, the billing clock moving on, and the daily job run for random days
(again, and out of order) are played against the real services. After each run the books are
compared with a plain model of the rules written here, and with what an accountant checks:
every entry balances, every account sums to zero per currency, and each payment's deferred
revenue, revenue and refunds add up to what it paid.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.tests.roles import staff_member
from billing.models import Subscription, SubscriptionStatus
from billing.services import subscription_extend
from core import clock
from core.errors import DomainError
from ledger.models import EntryKind, Posting, RecognitionPlan
from ledger.services.recognition import plan_extend, revenue_recognize
from ledger.tests.test_recognition import paid_period, recognize_as_plan_by_plan, subscribe
from payments.models import PAID_STATUSES, Payment
from payments.services.refunds.staff import refund_create
from payments.services.renewals import RenewalOutcome, renewal_run
from tariffs.models import PeriodUnit
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db
RUNNING = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


@dataclass
class Expected:
    """One payment as the rules say it should stand: a straight line, redrawn by refunds and extensions."""

    amount: int
    start: date
    end: date
    base_recognized: int = 0
    base_amount: int = 0
    recognized: int = 0
    through: date | None = None
    unearned_refunds: int = 0
    earned_refunds: int = 0
    redrawn: bool = False

    @property
    def deferred(self) -> int:
        return self.amount - self.recognized - self.unearned_refunds

    def earned_by(self, day: date) -> int:
        days = (self.end - self.start).days
        elapsed = min(max((day - self.start).days + 1, 0), days)
        return self.base_recognized + self.base_amount * elapsed // days

    def redraw(self, start: date, end: date) -> None:
        self.start, self.end = start, max(end, start + timedelta(days=1))
        self.base_recognized, self.base_amount, self.redrawn = self.recognized, self.deferred, True

    def first_open_day(self) -> date:
        return self.start if self.through is None else max(self.start, self.through + timedelta(days=1))

    def refund(self, amount: int, *, access_ended: bool, today: date) -> None:
        unearned = min(amount, self.deferred)
        self.unearned_refunds += unearned
        self.earned_refunds += amount - unearned
        first = self.first_open_day()
        if access_ended:
            self.redraw(min(first, today), today + timedelta(days=1))
        else:
            self.redraw(first, self.end)

    def extend(self, days: int) -> None:
        if self.deferred:
            self.redraw(self.first_open_day(), self.end + timedelta(days=days))

    def run(self, day: date) -> None:
        if self.deferred == 0 or self.start > day:
            return
        self.recognized = max(self.recognized, self.earned_by(day))
        self.through = day if self.through is None else max(self.through, day)


@dataclass
class Story:
    """The services played one step at a time, with the model kept beside them."""

    viewer_client: Any
    memory_provider: Any
    agent: Any
    expected: dict[Any, Expected] = field(default_factory=dict)
    subscriptions: list[Any] = field(default_factory=list)
    runs: list[date] = field(default_factory=list)

    def play(self, step: tuple[Any, ...]) -> None:
        getattr(self, step[0])(*step[1:])
        self.book_captures()

    def pay(self, unit: str, count: int, amount: int) -> None:
        n = len(self.subscriptions)
        TariffFactory(slug=f"t{n}", amount=amount, period_unit=unit, period_count=count)
        payment = subscribe(self.viewer_client, self.memory_provider, user_id=f"viewer{n}", tariff=f"t{n}")
        self.subscriptions.append(payment.subscription_id)

    def renew(self, pick: int) -> None:
        subscription = Subscription.objects.get(pk=self.subscriptions[pick % len(self.subscriptions)])
        if subscription.status == SubscriptionStatus.ACTIVE and subscription.current_period_end:
            clock.advance(
                max(subscription.current_period_end - clock.now(), timedelta(0)) + timedelta(minutes=1)
            )
            if renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED:
                event("renewal")

    def refund(self, pick: int, percent: int, end_access: bool | None) -> None:
        refundable = [p for p in Payment.objects.filter(pk__in=self.expected).order_by("paid_at", "pk")]
        refundable = [p for p in refundable if p.refunded_amount < p.amount]
        if not refundable:
            return
        payment = refundable[pick % len(refundable)]
        left = payment.amount - payment.refunded_amount
        try:
            refund_create(
                payment=payment,
                amount=max(1, left * percent // 100),
                reason="requested_by_customer",
                end_access=end_access,
                created_by=self.agent,
            )
        except DomainError:
            return
        payment.refresh_from_db()
        moved = payment.refunded_amount - (payment.amount - left)
        if moved:
            status = Subscription.objects.values_list("status", flat=True).get(pk=payment.subscription_id)
            event("refund that ended access" if status not in RUNNING else "refund that kept access")
            self.expected[payment.pk].refund(
                moved, access_ended=status not in RUNNING, today=clock.now().date()
            )

    def extend(self, pick: int, days: int) -> None:
        subscription = Subscription.objects.get(pk=self.subscriptions[pick % len(self.subscriptions)])
        previous_end = subscription.current_period_end
        try:
            subscription_extend(subscription=subscription, days=days, actor=self.agent, reason="Outage")
        except DomainError:
            return
        # The period extended is the one the latest payment started before its old end paid for
        # (a second extension of one period stretches the same payment again).
        payment = (
            Payment.objects.filter(
                subscription=subscription, status__in=PAID_STATUSES, period_start__lt=previous_end
            )
            .order_by("-period_start", "-paid_at")
            .first()
        )
        event("goodwill extension")
        if payment is not None and payment.pk in self.expected:
            self.expected[payment.pk].extend(days)

    def advance(self, hours: int) -> None:
        clock.advance(timedelta(hours=hours))

    def recognize(self, days_back: int) -> None:
        day = clock.now().date() - timedelta(days=1 + days_back)
        posted = revenue_recognize(day=day, batch_size=3).entries
        event("run that posted" if posted else "run that posted nothing")
        self.runs.append(day)
        for expected in self.expected.values():
            expected.run(day)
        self.check()

    def book_captures(self) -> None:
        """Give every payment the provider captured (a new one, a renewal) its line in the model."""
        for payment in Payment.objects.filter(status__in=PAID_STATUSES, amount__gt=0).exclude(
            pk__in=self.expected
        ):
            assert payment.period_start is not None and payment.period_end is not None
            start = payment.period_start.date()
            end = max(payment.period_end.date(), start + timedelta(days=1))
            self.expected[payment.pk] = Expected(
                amount=payment.amount, start=start, end=end, base_amount=payment.amount
            )

    def check(self) -> None:
        """Compare the books and the plans with the model, and check what an accountant would."""
        books: dict[Any, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        rows = Posting.objects.values_list("entry__payment_id", "entry__kind", "account__code", "amount")
        for payment_id, kind, code, amount in rows:
            books[payment_id][(kind, code)] += amount
        plans = {plan.payment_id: plan for plan in RecognitionPlan.objects.all()}
        assert set(plans) == set(self.expected)
        for payment_id, expected in self.expected.items():
            plan, book = plans[payment_id], books[payment_id]
            revenue = -sum(amount for (kind, code), amount in book.items() if code == "revenue")
            unearned = book[(EntryKind.REFUND, "deferred_revenue")]
            deferred = -sum(amount for (kind, code), amount in book.items() if code == "deferred_revenue")
            assert (revenue, plan.recognized) == (expected.recognized, expected.recognized), payment_id
            assert (deferred, plan.deferred) == (expected.deferred, expected.deferred), payment_id
            assert unearned == expected.unearned_refunds, payment_id
            assert book[(EntryKind.REFUND, "refunds")] == expected.earned_refunds, payment_id
            assert plan.deferred + plan.recognized + unearned == expected.amount
            if expected.through is not None and not expected.redrawn:
                # Never refunded nor extended: the closed form of the straight line.
                days = (expected.end - expected.start).days
                elapsed = min((expected.through - expected.start).days + 1, days)
                assert plan.recognized == expected.amount * elapsed // days
            if expected.through is not None and expected.through >= expected.end - timedelta(days=1):
                assert plan.deferred == 0  # the line is over: nothing is owed any more
        unbalanced = (
            Posting.objects.values("entry_id", "currency").annotate(total=Sum("amount")).exclude(total=0)
        )
        assert not unbalanced.exists()
        accounts = Posting.objects.values("currency").annotate(total=Sum("amount")).exclude(total=0)
        assert not accounts.exists()


def payments() -> st.SearchStrategy[tuple[Any, ...]]:
    """Pay a tariff of one or two months or years, of 0.01 to 5,000.00."""
    return st.tuples(
        st.just("pay"), st.sampled_from(PeriodUnit.values), st.integers(1, 2), st.integers(1, 500000)
    )


refunds = st.tuples(
    st.just("refund"), st.integers(0, 9), st.integers(1, 100), st.sampled_from([None, True, False])
)
steps = st.one_of(
    payments(),
    st.tuples(st.just("renew"), st.integers(0, 5)),
    refunds,
    refunds,
    st.tuples(st.just("extend"), st.integers(0, 5), st.integers(1, 60)),
    st.tuples(st.just("advance"), st.integers(0, 24 * 50)),
    st.tuples(st.just("advance"), st.integers(0, 24 * 3)),
    # The days just over (the daily job), and days further back (a run again, out of order).
    st.tuples(st.just("recognize"), st.integers(0, 2)),
    st.tuples(st.just("recognize"), st.integers(0, 40)),
)


@given(
    story=st.builds(lambda first, rest: [first, *rest], payments(), st.lists(steps, min_size=5, max_size=14))
)
@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_after_the_job_for_a_day_every_payment_has_earned_what_its_line_says(
    story, viewer_client, memory_provider, settings
):
    settings.REFUND_APPROVAL_THRESHOLD = 10**12  # no refund waits for a second staff member here
    with transaction.atomic():
        clock.reset()
        memory_provider.gateway.reset()
        with connection.cursor() as cursor:
            # The database checks each entry balances as it is written, not only at commit
            # (which a test rolled back never reaches).
            cursor.execute("SET CONSTRAINTS posting_entry_balanced IMMEDIATE")
        played = Story(
            viewer_client=viewer_client, memory_provider=memory_provider, agent=staff_member("Support")
        )
        for step in story:
            played.play(step)
        # The day after the last step (the rest of a refund that ended access is earned), then
        # a day after every period: each payment has earned all it kept.
        for hours in (24, 24 * 2000):
            played.advance(hours)
            played.recognize(0)
        for expected in played.expected.values():
            assert expected.recognized == expected.amount - expected.unearned_refunds
        transaction.set_rollback(True)


# The job posts a batch of plans at once; plan by plan (the reference, test_recognition.py) it
# must have written the same entries, postings and plans, whatever lines the plans follow.

# A paid period: how many days before today its line starts, its days, its amount, its currency.
periods = st.tuples(
    st.integers(1, 40), st.integers(1, 400), st.integers(1, 500000), st.sampled_from(["RUB", "EUR"])
)
# The job for a day that many days before today (again, out of order, often a recent one), or
# a goodwill extension of one period (its line redrawn with what is left).
batch_steps = st.one_of(
    st.tuples(st.just("run"), st.integers(1, 40)),
    st.tuples(st.just("run"), st.integers(1, 5)),
    st.tuples(st.just("extend"), st.integers(0, 7), st.integers(1, 60)),
)


@given(
    lines=st.lists(periods, min_size=1, max_size=8),
    story=st.lists(batch_steps, min_size=1, max_size=8),
    batch_size=st.integers(1, 4),
)
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_job_posts_in_batches_what_it_posted_plan_by_plan(lines, story, batch_size):
    with transaction.atomic():
        clock.reset()
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS posting_entry_balanced IMMEDIATE")
        today = clock.now().date()
        paid = [
            paid_period(amount=amount, currency=currency, start=today - timedelta(days=back), days=days)
            for back, days, amount, currency in lines
        ]
        for step in story:
            if step[0] == "run":
                recognize_as_plan_by_plan(day=today - timedelta(days=step[1]), batch_size=batch_size)
            else:
                plan_extend(payment=paid[step[1] % len(paid)], days=step[2])
        transaction.set_rollback(True)
