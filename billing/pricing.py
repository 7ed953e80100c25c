"""What a subscription costs for a given period (the locked price, less any discount)."""

from datetime import datetime

from billing.models import Subscription
from billing.periods import months_between, period_length_in_months
from tariffs.models import PromoKind, PromoRedemption
from tariffs.selectors import promo_redemption_for_subscription


def period_number(*, subscription: Subscription, period_start: datetime | None) -> int:
    """Return which paid period starts at `period_start`: 0 for the first, 1 for the next, ...

    Periods are counted from the billing anchor, which is the end of the trial for a
    subscription that had one: the first paid period is the one after the trial.
    """
    anchor = subscription.billing_anchor
    if period_start is None or anchor is None:
        return 0
    tariff = subscription.tariff
    return months_between(anchor, period_start) // period_length_in_months(
        tariff.period_unit, tariff.period_count
    )


def discounted_amount(*, amount: int, currency: str, redemption: PromoRedemption) -> int:
    """Return a price less a promo code's discount, never below zero.

    A percent discount is rounded to the nearest minor unit (half up); a fixed one applies
    only to a price in its own currency.
    """
    if redemption.kind == PromoKind.PERCENT:
        discount = (amount * redemption.value + 50) // 100
    elif redemption.currency == currency:
        discount = redemption.value
    else:
        discount = 0
    return max(amount - discount, 0)


def amount_for_period(*, subscription: Subscription, period_start: datetime | None) -> int:
    """Return the amount in minor units to charge for the period starting at `period_start`.

    `period_start` is None for the first period, before it is known. The locked price is
    discounted while the subscription's promo code redemption is in effect: for its first
    `periods` paid periods, or every period if that is empty.
    """
    redemption = promo_redemption_for_subscription(subscription_id=subscription.pk)
    return price_for_period(
        subscription=subscription,
        period_start=period_start,
        amount=subscription.amount,
        redemption=redemption,
    )


def price_for_period(
    *,
    subscription: Subscription,
    period_start: datetime | None,
    amount: int,
    redemption: PromoRedemption | None,
) -> int:
    """Return `amount` as charged for the subscription's period starting at `period_start`.

    The rule of `amount_for_period` with the price and the redemption given: a reader that
    already holds the redemption (a list prefetches it) or prices another tariff (the
    scheduled downgrade's) asks no more of the database.
    """
    if redemption is None:
        return amount
    number = period_number(subscription=subscription, period_start=period_start)
    if redemption.periods is not None and number >= redemption.periods:
        return amount
    return discounted_amount(amount=amount, currency=subscription.currency, redemption=redemption)
