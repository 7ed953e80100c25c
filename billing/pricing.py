"""What a subscription costs for a given period (the locked price, less any discount)."""

from datetime import datetime

from billing.models import Subscription


def amount_for_period(*, subscription: Subscription, period_start: datetime | None) -> int:
    """Return the amount in minor units to charge for the period starting at `period_start`.

    `period_start` is None for the first period, before it is known.
    """
    return subscription.amount
