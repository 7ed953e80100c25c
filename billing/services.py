"""Writes to subscriptions: creation and every status change.

A subscription's status changes only here, through `_transition`, which locks the row,
re-reads it and refuses any move the lifecycle does not allow.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from accounts.models import BillingAccount
from billing.errors import InvalidStatusTransition, LiveSubscriptionExists, TariffUnavailable
from billing.locks import subscription_lock
from billing.models import LIVE_STATUSES, Subscription, SubscriptionStatus
from billing.periods import next_period_end
from notifications import notify
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


def _transition(subscription: Subscription, to: str, **changes: object) -> Subscription:
    locked = subscription_lock(subscription.pk)
    if to not in ALLOWED_TRANSITIONS[locked.status]:
        raise InvalidStatusTransition(
            details={"subscription": str(locked.pk), "from": locked.status, "to": to}
        )
    previous = locked.status
    locked.status = to
    for field, value in changes.items():
        setattr(locked, field, value)
    locked.save(update_fields=["status", "updated_at", *changes])
    notify.subscription_status_changed(subscription=locked, previous=previous)
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
            trial_end=trial_end,
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
def subscription_mark_past_due(
    *, subscription: Subscription, retry_at: datetime | None = None
) -> Subscription:
    """Record that the renewal due at the period end failed; `retry_at` is the next try.

    Access holds for the grace period after the period end (see billing.access).
    """
    locked = subscription_lock(subscription.pk)
    if locked.status == S.PAST_DUE:
        locked.next_renewal_attempt_at = retry_at
        locked.save(update_fields=["next_renewal_attempt_at", "updated_at"])
        return locked
    return _transition(locked, S.PAST_DUE, next_renewal_attempt_at=retry_at)


@transaction.atomic
def subscription_renew(
    *, subscription: Subscription, period_start: datetime, period_end: datetime
) -> Subscription:
    """Move a subscription into the period a renewal paid for, exactly once per period.

    A late or repeated call for a period already entered changes nothing.
    """
    locked = subscription_lock(subscription.pk)
    if locked.current_period_end != period_start:
        return locked
    changes = {
        "current_period_start": period_start,
        "current_period_end": period_end,
        "next_renewal_attempt_at": None,
    }
    if locked.status == S.ACTIVE:
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save(update_fields=[*changes, "updated_at"])
        notify.subscription_renewed(subscription=locked)
        return locked
    renewed = _transition(locked, S.ACTIVE, **changes)
    notify.subscription_renewed(subscription=renewed)
    return renewed


class CannotChangeEndedSubscription(InvalidStatusTransition):
    code = "subscription_ended"
    message = "This subscription has already ended."


class CannotResume(InvalidStatusTransition):
    code = "cannot_resume"
    message = "Only a subscription set to end at its period end can be resumed, before that end."


@transaction.atomic
def subscription_set_autopay(*, subscription: Subscription, enabled: bool) -> Subscription:
    """Turn automatic renewal on or off; without it the subscription ends at its period end."""
    locked = subscription_lock(subscription.pk)
    if locked.status not in LIVE_STATUSES:
        raise CannotChangeEndedSubscription()
    locked.autopay = enabled
    locked.save(update_fields=["autopay", "updated_at"])
    return locked


@transaction.atomic
def subscription_cancel(*, subscription: Subscription, at: datetime) -> Subscription:
    """Cancel at the viewer's request: access stays to the period end, nothing renews.

    The flag is set under the row lock the renewal job takes, so a renewal that was
    already picked up sees it before charging. A past-due subscription has no paid
    period left and ends at once.
    """
    locked = subscription_lock(subscription.pk)
    if locked.status in (S.TRIALING, S.ACTIVE):
        newly_canceled = not locked.cancel_at_period_end
        locked.cancel_at_period_end = True
        locked.canceled_at = at
        locked.save(update_fields=["cancel_at_period_end", "canceled_at", "updated_at"])
        if newly_canceled:
            notify.subscription_canceled(subscription=locked)
        return locked
    if locked.status == S.PAST_DUE:
        return _transition(locked, S.CANCELED, canceled_at=at, ended_at=at, next_renewal_attempt_at=None)
    raise CannotChangeEndedSubscription(details={"status": locked.status})


@transaction.atomic
def subscription_resume(*, subscription: Subscription, at: datetime) -> Subscription:
    """Undo a cancel before the period ends."""
    locked = subscription_lock(subscription.pk)
    running = locked.status in (S.TRIALING, S.ACTIVE)
    if not (
        running
        and locked.cancel_at_period_end
        and locked.current_period_end
        and at < locked.current_period_end
    ):
        raise CannotResume(details={"status": locked.status})
    locked.cancel_at_period_end = False
    locked.canceled_at = None
    locked.save(update_fields=["cancel_at_period_end", "canceled_at", "updated_at"])
    return locked


@transaction.atomic
def subscription_cancel_now(*, subscription: Subscription, at: datetime) -> Subscription:
    """End a subscription immediately (an abandoned checkout, a refund that ends access)."""
    return _transition(subscription, S.CANCELED, canceled_at=at, ended_at=at)


@transaction.atomic
def subscription_expire(*, subscription: Subscription, at: datetime) -> Subscription:
    """End a subscription that ran out: canceled at period end, or dunning exhausted."""
    return _transition(subscription, S.EXPIRED, ended_at=at, next_renewal_attempt_at=None)
