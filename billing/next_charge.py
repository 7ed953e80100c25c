"""What a subscription's next automatic charge will be, and when: the account page's "next charge".

It tells what the renewal job will do, by the rules it follows (payments/services/renewals.py):

- a trial or a paid period that renews (autopay on, not canceled) is charged at its end: the
  locked price less the promo discount still in effect for the next period
  (`billing.pricing`), or, with a downgrade scheduled, the new tariff's price (the renewal
  takes the change before it prices the period, billing/plan_change.py);
- a past-due subscription's unpaid renewal is charged again at its next retry; with no retry
  planned it is due now and waits for the viewer (to confirm it on the bank's page, or for a
  new card, which is retried at once): `at` is None;
- nothing is charged for a pending subscription (its first payment is its checkout page), one
  whose autopay is off or that is canceled at its period end, or one that has ended.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ObjectDoesNotExist

from billing.models import Subscription, SubscriptionStatus
from billing.plan_change import discount_carries_over
from billing.pricing import price_for_period
from tariffs.models import PromoRedemption


@dataclass(frozen=True)
class NextCharge:
    amount: int
    currency: str
    # None: due now, waiting for the viewer (a past-due renewal with no retry planned).
    at: datetime | None


def _redemption(subscription: Subscription) -> PromoRedemption | None:
    # Read through the relation so that a list that `select_related` it asks nothing more.
    try:
        return subscription.promo_redemption
    except ObjectDoesNotExist:
        return None


def _renewal_amount(subscription: Subscription) -> int:
    """Return what the renewal at the current period's end charges."""
    period_start = subscription.current_period_end
    redemption = _redemption(subscription)
    scheduled = subscription.scheduled_tariff
    if scheduled is None:
        return price_for_period(
            subscription=subscription,
            period_start=period_start,
            amount=subscription.amount,
            redemption=redemption,
        )
    # The downgrade keeps the discount only where the change itself would (plan_change's
    # `_end_limited_discount`): a code for the new tariff, and not one limited to a number of
    # periods when the period length changes. With the same length the count goes on as before.
    if redemption is not None and not discount_carries_over(
        redemption=redemption, previous=subscription.tariff, new=scheduled
    ):
        redemption = None
    return price_for_period(
        subscription=subscription, period_start=period_start, amount=scheduled.amount, redemption=redemption
    )


def next_charge_for(*, subscription: Subscription) -> NextCharge | None:
    """Return the next charge the renewal job will make for a subscription, or None if it makes none.

    Reads the subscription's promo redemption (one query unless it was `select_related`).
    """
    status = subscription.status
    if status == SubscriptionStatus.PAST_DUE:
        # The unpaid period starts at the current period's end; its price is what the renewal
        # payment was made for (a past-due subscription cannot change plan meanwhile).
        return NextCharge(
            amount=_renewal_amount(subscription),
            currency=subscription.currency,
            at=subscription.next_renewal_attempt_at,
        )
    renews = subscription.autopay and not subscription.cancel_at_period_end
    if status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING) or not renews:
        return None
    return NextCharge(
        amount=_renewal_amount(subscription),
        currency=subscription.currency,
        at=subscription.current_period_end,
    )
