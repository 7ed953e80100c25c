"""The deferred revenue schedule is each open plan's straight line cut at the month ends, summed.

The selector evaluates a plan only at the month ends inside its line and sums the others by
their start and end days; here it is compared with the plain per-plan reading of the same rule
over random plans: lines that began long ago or have not begun, lines the job lags behind or a
refund cut short, one-day lines, lines longer than the twelve months shown.
"""

from collections import defaultdict
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ledger.models import RecognitionPlan
from ledger.selectors import _next_month, deferred_revenue_schedule
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

TODAY = date(2027, 3, 14)


def month_ends(months: int) -> list[date]:
    firsts = [TODAY.replace(day=1)]
    for _ in range(months):
        firsts.append(_next_month(firsts[-1]))
    return firsts[1:]


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    # Lines that start or end exactly on a month's end are where an off-by-one would hide.
    start = draw(
        st.sampled_from(month_ends(14))
        | st.builds(lambda back: TODAY + timedelta(days=back), st.integers(min_value=-500, max_value=90))
    )
    end = draw(
        st.sampled_from([end for end in month_ends(16) if end > start])
        | st.builds(lambda days: start + timedelta(days=days), st.integers(min_value=1, max_value=500))
    )
    base_recognized = draw(st.integers(min_value=0, max_value=5_000))
    base_amount = draw(st.integers(min_value=0, max_value=400_000))
    recognized = draw(st.integers(min_value=0, max_value=base_recognized + base_amount))
    # What a plan still defers may be less than its line promises (a refund ended it early).
    deferred = draw(st.integers(min_value=1, max_value=max(1, base_recognized + base_amount - recognized)))
    return {
        "currency": draw(st.sampled_from(["RUB", "EUR"])),
        "start_day": start,
        "end_day": end,
        "base_recognized": base_recognized,
        "base_amount": base_amount,
        "recognized": recognized,
        "deferred": deferred,
    }


def earned_before(plan: dict[str, Any], boundary: date) -> int:
    """What the plan's line recognised before `boundary`, kept within the plan: the rule, per plan."""
    start, end = plan["start_day"], plan["end_day"]
    days = (end - start).days
    elapsed = min(max((boundary - start).days, 0), days)
    line = plan["base_recognized"] + plan["base_amount"] * elapsed // days
    recognized, deferred = plan["recognized"], plan["deferred"]
    return min(max(line, recognized), recognized + deferred)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(plans(), min_size=1, max_size=8), st.integers(min_value=1, max_value=14))
def test_the_schedule_is_every_plans_line_cut_at_the_month_ends(drawn, months):
    RecognitionPlan.objects.all().delete()
    for plan in drawn:
        RecognitionPlan.objects.create(payment=PaymentFactory(), **plan)

    schedules = {
        schedule.currency: schedule for schedule in deferred_revenue_schedule(today=TODAY, months=months)
    }

    expected: dict[str, list[int]] = defaultdict(lambda: [0] * (months + 1))
    for plan in drawn:
        cuts = [plan["recognized"]] + [earned_before(plan, end) for end in month_ends(months)]
        for index, (before, after) in enumerate(pairwise(cuts)):
            expected[plan["currency"]][index] += after - before
        expected[plan["currency"]][months] += plan["recognized"] + plan["deferred"] - cuts[-1]
    assert set(schedules) == set(expected)
    for currency, amounts in expected.items():
        schedule = schedules[currency]
        assert [month.amount for month in schedule.months] + [schedule.later] == amounts
        assert (
            schedule.total
            == schedule.deferred
            == sum(p["deferred"] for p in drawn if p["currency"] == currency)
        )
