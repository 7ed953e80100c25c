"""Billing periods follow the calendar, anchored to the day the subscription started."""

import calendar
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.periods import add_months, months_between, next_period_end


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


anchors = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
)
units = st.sampled_from(["month", "year"])


class TestExamples:
    def test_month_end_anchor_follows_short_months_and_returns(self):
        anchor = utc(2027, 1, 31, 10, 30)
        ends = [anchor]
        for _ in range(3):
            ends.append(next_period_end(anchor=anchor, period_end=ends[-1], unit="month", count=1))
        assert ends[1:] == [utc(2027, 2, 28, 10, 30), utc(2027, 3, 31, 10, 30), utc(2027, 4, 30, 10, 30)]

    def test_leap_february_gets_its_29th(self):
        assert add_months(utc(2028, 1, 31), 1) == utc(2028, 2, 29)

    def test_leap_day_yearly_renews_on_28th_then_back_to_29th(self):
        anchor = utc(2028, 2, 29, 12)
        first = next_period_end(anchor=anchor, period_end=anchor, unit="year", count=1)
        fourth = add_months(anchor, 48)
        assert first == utc(2029, 2, 28, 12)
        assert fourth == utc(2032, 2, 29, 12)

    def test_twenty_four_monthly_renewals_from_31_january_stay_on_month_ends(self):
        anchor = utc(2027, 1, 31, 9)
        end = anchor
        for _ in range(24):
            end = next_period_end(anchor=anchor, period_end=end, unit="month", count=1)
            assert end.day == calendar.monthrange(end.year, end.month)[1]
            assert (end.hour, end.minute) == (9, 0)
        assert end == utc(2029, 1, 31, 9)

    def test_quarterly_period_is_three_months(self):
        anchor = utc(2027, 11, 30)
        assert next_period_end(anchor=anchor, period_end=anchor, unit="month", count=3) == utc(2028, 2, 29)

    def test_naive_datetimes_are_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            add_months(datetime(2027, 1, 1), 1)

    def test_other_timezones_are_normalised_to_utc(self):
        moscow = timezone(timedelta(hours=3))
        assert add_months(datetime(2027, 1, 1, 1, 0, tzinfo=moscow), 1) == utc(2027, 1, 31, 22, 0)

    def test_zero_length_period_is_refused(self):
        with pytest.raises(ValueError):
            next_period_end(anchor=utc(2027, 1, 1), period_end=utc(2027, 1, 1), unit="month", count=0)


class TestProperties:
    @given(anchor=anchors, months=st.integers(min_value=0, max_value=600))
    def test_day_is_the_anchor_day_clamped_to_the_month(self, anchor, months):
        shifted = add_months(anchor, months)
        last_day = calendar.monthrange(shifted.year, shifted.month)[1]
        assert shifted.day == min(anchor.day, last_day)
        assert shifted.time() == anchor.time()
        assert shifted.tzinfo == UTC

    @given(anchor=anchors, months=st.integers(min_value=0, max_value=600))
    def test_exactly_that_many_calendar_months_pass(self, anchor, months):
        assert months_between(anchor, add_months(anchor, months)) == months

    @given(
        anchor=anchors, unit=units, count=st.integers(min_value=1, max_value=3), periods=st.integers(1, 40)
    )
    def test_chained_renewals_never_drift_from_the_anchor(self, anchor, unit, count, periods):
        end = anchor
        for _ in range(periods):
            previous, end = end, next_period_end(anchor=anchor, period_end=end, unit=unit, count=count)
            assert end > previous
        step = count * (12 if unit == "year" else 1)
        assert end == add_months(anchor, periods * step)

    @given(anchor=anchors, years=st.integers(min_value=1, max_value=30))
    def test_a_year_is_twelve_months(self, anchor, years):
        by_year = next_period_end(anchor=anchor, period_end=anchor, unit="year", count=years)
        assert by_year == add_months(anchor, 12 * years)

    @given(anchor=anchors, months=st.integers(min_value=1, max_value=600))
    def test_periods_are_between_28_and_31_days_per_month(self, anchor, months):
        length = add_months(anchor, months) - add_months(anchor, months - 1)
        assert timedelta(days=28) <= length <= timedelta(days=31)
