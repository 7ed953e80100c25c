"""Scene-setting for the plan-change tests: a frozen billing clock and a subscription in a known period."""

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from billing.models import Subscription
from core import clock
from tariffs.models import PeriodUnit, Tariff
from tariffs.tests.factories import TariffFactory

# The period every scene runs in: 1 January to 1 February 2027, 31 days = 2,678,400 seconds.
PERIOD_START = datetime(2027, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2027, 2, 1, tzinfo=UTC)


@pytest.fixture
def frozen_clock(monkeypatch) -> Callable[[datetime], None]:
    """Return a function that stops the billing clock at a moment (proration is counted in seconds).

    The offset moves with it, so pages sent to the provider still expire on its real time.
    """
    real = timezone.now()

    def freeze(moment: datetime) -> None:
        monkeypatch.setattr(clock, "now", lambda: moment)
        monkeypatch.setattr(clock, "offset", lambda: moment - real)

    return freeze


@pytest.fixture
def yearly_tariff() -> Tariff:
    return TariffFactory.create(slug="yearly", name="Yearly", amount=399000, period_unit=PeriodUnit.YEAR)


@pytest.fixture
def premium_tariff() -> Tariff:
    return TariffFactory.create(slug="premium", name="Premium", amount=59900)


@pytest.fixture
def basic_tariff() -> Tariff:
    return TariffFactory.create(slug="basic", name="Basic", amount=19900)


def in_known_period(
    subscription: Subscription, start: datetime = PERIOD_START, end: datetime = PERIOD_END
) -> None:
    """Put a running subscription into the period [start, end), anchored at its start."""
    Subscription.objects.filter(pk=subscription.pk).update(
        current_period_start=start, current_period_end=end, billing_anchor=start
    )
    subscription.refresh_from_db()
