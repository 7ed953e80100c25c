"""Writes to subscriptions: creation and every status change.

A subscription's status changes only here, through `_transition`, which locks the row,
re-reads it and refuses any move the lifecycle does not allow.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from accounts.models import BillingAccount
from billing.errors import InvalidStatusTransition, LiveSubscriptionExists, TariffUnavailable
from billing.models import LIVE_STATUSES, Subscription, SubscriptionStatus
from billing.periods import next_period_end
from tariffs.models import Tariff

S = SubscriptionStatus

# Which statuses a subscription may move to from each status. Canceled and expired are
# final: a viewer who comes back starts a new subscription.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.TRIALING, S.ACTIVE, S.CANCELED}),
    S.TRIALING: frozenset({S.ACTIVE, S.PAST_DUE, S.CANCELED, S.EXPIRED}),
    S.ACTIVE: frozenset({S.PAST_DUE, S.CANCELED, S.EXPIRED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.CANCELED, S.EXPIRED}),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
}


def _locked(subscription: Subscription) -> Subscription:
    """Return the subscription re-read under a row lock (inside the caller's transaction)."""
    return Subscription.objects.select_for_update().select_related("tariff").get(pk=subscription.pk)


def _transition(subscription: Subscription, to: str, **changes: object) -> Subscription:
    locked = _locked(subscription)
    if to not in ALLOWED_TRANSITIONS[locked.status]:
        raise InvalidStatusTransition(
            details={"subscription": str(locked.pk), "from": locked.status, "to": to}
        )
    locked.status = to
    for field, value in changes.items():
        setattr(locked, field, value)
    locked.save(update_fields=["status", "updated_at", *changes])
    return locked


@transaction.atomic
def subscription_create(*, account: BillingAccount, tariff: Tariff, autopay: bool = True) -> Subscription:
    """Create a pending subscription at the tariff's current price.

    The database refuses a second live subscription for one account, so two racing
    requests cannot both succeed: the loser gets `LiveSubscriptionExists`.
    """
    if not tariff.is_active:
        raise TariffUnavailable(details={"tariff": tariff.slug})
    if Subscription.objects.filter(account=account, status__in=LIVE_STATUSES).exists():
        raise LiveSubscriptionExists()
    try:
        with transaction.atomic():
            return Subscription.objects.create(
                account=account,
                tariff=tariff,
                amount=tariff.amount,
                currency=tariff.currency,
                autopay=autopay,
            )
    except IntegrityError as exc:
        raise LiveSubscriptionExists() from exc


@transaction.atomic
def subscription_start(
    *, subscription: Subscription, started_at: datetime, trial_days: int = 0
) -> Subscription:
    """Start the first period of a paid-for subscription, or its trial.

    With trial days the subscription is trialing until the trial ends, and the billing
    anchor is the trial's end, so paid periods are counted from there.
    """
    tariff = subscription.tariff
    if trial_days:
        trial_end = started_at + timedelta(days=trial_days)
        return _transition(
            subscription,
            S.TRIALING,
            billing_anchor=trial_end,
            current_period_start=started_at,
            current_period_end=trial_end,
        )
    period_end = next_period_end(
        anchor=started_at, period_end=started_at, unit=tariff.period_unit, count=tariff.period_count
    )
    return _transition(
        subscription,
        S.ACTIVE,
        billing_anchor=started_at,
        current_period_start=started_at,
        current_period_end=period_end,
    )


@transaction.atomic
def subscription_mark_past_due(*, subscription: Subscription) -> Subscription:
    """Mark a subscription whose renewal failed as past due; access holds for the grace period."""
    return _transition(subscription, S.PAST_DUE)


@transaction.atomic
def subscription_cancel_now(*, subscription: Subscription, at: datetime) -> Subscription:
    """End a subscription immediately (an abandoned checkout, a refund that ends access)."""
    return _transition(subscription, S.CANCELED, canceled_at=at, ended_at=at)


@transaction.atomic
def subscription_expire(*, subscription: Subscription, at: datetime) -> Subscription:
    """End a subscription that ran out: canceled at period end, or dunning exhausted."""
    return _transition(subscription, S.EXPIRED, ended_at=at)
