"""Writes to subscriptions: creation and every status change.

A subscription's status changes only here, through `_transition`, which locks the row,
re-reads it and refuses any move the lifecycle does not allow.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop
from rest_framework import status

from accounts.models import BillingAccount
from billing import facts
from billing.locks import subscription_lock
from billing.models import LIVE_STATUSES, Subscription, SubscriptionStatus
from billing.periods import add_months, months_between, next_period_end, period_length_in_months
from core import clock
from core.audit import AuditAction, audit_changes, audit_entry_create
from core.errors import DomainError, InvalidStatusTransition, LiveSubscriptionExists, TariffUnavailable
from tariffs.models import Tariff

S = SubscriptionStatus
# The length of the "trial" of a card that already had its one: over as soon as it starts.
NO_TRIAL = timedelta(seconds=1)

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
    facts.subscription_status_changed.record(subscription=locked, previous=previous)
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
    *,
    subscription: Subscription,
    started_at: datetime,
    trial_days: int = 0,
    card_saved_without_charge: bool = False,
    card_fingerprint: str = "",
) -> Subscription:
    """Start the first period of a paid-for subscription, or its trial.

    With trial days the subscription is trialing until the trial ends, and the billing
    anchor is the trial's end, so paid periods are counted from there. A card saved without
    a charge and no trial to give (the card already had one) starts a trial that ends at
    once (a period must have a length: one second): the renewal job then charges the first
    period to that card.
    """
    tariff = subscription.tariff
    if trial_days or card_saved_without_charge:
        trial_end = started_at + (timedelta(days=trial_days) if trial_days else NO_TRIAL)
        return _transition(
            subscription,
            S.TRIALING,
            trial_end=trial_end,
            billing_anchor=trial_end,
            current_period_start=started_at,
            current_period_end=trial_end,
            trial_card_fingerprint=card_fingerprint,
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
    return subscription_renew_locked(
        locked=subscription_lock(subscription.pk), period_start=period_start, period_end=period_end
    )


def subscription_renew_locked(
    *, locked: Subscription, period_start: datetime, period_end: datetime
) -> Subscription:
    """`subscription_renew` for a caller whose transaction already holds the subscription's lock.

    `locked` is the row that caller read under the lock, with whatever it wrote since applied to
    it (the renewal job's row): reading it again would cost every renewal two queries.
    """
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
        facts.subscription_renewed.record(subscription=locked)
        return locked
    renewed = _transition(locked, S.ACTIVE, **changes)
    facts.subscription_renewed.record(subscription=renewed)
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
            facts.subscription_canceled.record(subscription=locked)
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


# --- goodwill extensions ---------------------------------------------------------------

EXTENSION_MAX_DAYS = 365
# Only these can be given free days (past due is refused: see subscription_extend).
EXTENDABLE_STATUSES = (S.TRIALING, S.ACTIVE)


# Messages are marked for translation (admin shows them translated) but kept in English here,
# as the API answers every error in English.
class ExtensionInvalid(DomainError):
    code = "extension_invalid"
    message = gettext_noop("A goodwill extension is 1 to 365 days, with a reason.")


class SubscriptionNotExtendable(DomainError):
    code = "subscription_not_extendable"
    message = gettext_noop("Only a trialing or active subscription can be extended.")
    status_code = status.HTTP_409_CONFLICT


class SubscriptionPastDue(SubscriptionNotExtendable):
    code = "subscription_past_due"
    message = gettext_noop(
        "This subscription is past due: its renewal is being retried. It can be extended once "
        "the renewal is paid."
    )


class RenewalUnderWay(SubscriptionNotExtendable):
    code = "renewal_under_way"
    message = gettext_noop(
        "This subscription's period is over and its renewal is under way; try again once it has renewed."
    )


class SubscriptionChanged(SubscriptionNotExtendable):
    code = "subscription_changed"
    message = gettext_noop(
        "The subscription's period end has changed since the form was shown (extended already?). "
        "Check it and start again."
    )


@dataclass(frozen=True)
class ExtensionPlan:
    """Where a goodwill extension puts a subscription: its new period end and what follows."""

    period_end: datetime
    billing_anchor: datetime
    next_period_end: datetime


def subscription_extension_plan(*, subscription: Subscription, days: int) -> ExtensionPlan:
    """Return the period end, billing anchor and next renewal's period end after extending by `days`.

    Renewals start the next period at `current_period_end` but end it one tariff period after
    it *counted from the billing anchor* (payments.services.renewals, billing.periods), and promo
    discounts count paid periods from the anchor too (billing.pricing). Moving only the period
    end would make the next paid period shorter by the days given, since the anchor's day of
    the month would win; re-anchoring at the new end would restart the period count and give
    a first-period discount again. So the anchor moves to the new end's day and time, in the
    month the same number of periods earlier: the next period runs from the new end for one
    whole tariff period, and the periods counted (hence any discount still owed) stay the
    same. Month ends keep the clamping rule of billing.periods (a 31st renews on the 30th in
    April) unless the anchor's month lacks the new end's day (29 to 31): the anchor then
    takes that month's last day, later periods end on that day, and the first period after
    the extension is shorter than a calendar month by those one to three days. Periods of
    several months look for an earlier month that has the day before clamping.
    """
    end = subscription.current_period_end
    if end is None:
        raise SubscriptionNotExtendable(details={"status": subscription.status})
    new_end = end + timedelta(days=days)
    anchor = subscription.billing_anchor or end
    tariff = subscription.tariff
    length = period_length_in_months(tariff.period_unit, tariff.period_count)
    periods_elapsed = months_between(anchor, end) // length
    # Months back from the new end to the anchor: whole periods, plus up to a period less one
    # month, which counts the same periods and may land on a month long enough for the day.
    back = periods_elapsed * length
    candidates = [add_months(new_end, -(back + extra)) for extra in range(length)]
    new_anchor = next((a for a in candidates if a.day == new_end.day), candidates[0])
    following = next_period_end(
        anchor=new_anchor, period_end=new_end, unit=tariff.period_unit, count=tariff.period_count
    )
    return ExtensionPlan(period_end=new_end, billing_anchor=new_anchor, next_period_end=following)


@transaction.atomic
def subscription_extend(
    *,
    subscription: Subscription,
    days: int,
    actor: AbstractBaseUser,
    reason: str,
    expected_period_end: datetime | None = None,
) -> Subscription:
    """Give a live subscription `days` more of its current period for free (support's goodwill).

    The period end and the billing anchor move on together (see `subscription_extension_plan`),
    so the next charge happens at the new end and pays one whole period. Refused with a
    `DomainError`: days outside 1..365 or no reason (`ExtensionInvalid`); a pending, canceled,
    expired (`SubscriptionNotExtendable`) or past-due (`SubscriptionPastDue`) subscription; a
    period already over, whose renewal is under way (`RenewalUnderWay`); and, when
    `expected_period_end` is given (the end the form showed), a period end that moved since
    (`SubscriptionChanged`), so a resubmitted form never extends twice.
    """
    reason = reason.strip()
    if not 1 <= days <= EXTENSION_MAX_DAYS or not reason:
        raise ExtensionInvalid(details={"days": days, "max_days": EXTENSION_MAX_DAYS})
    locked = subscription_lock(subscription.pk)
    if locked.status == S.PAST_DUE:
        # The failed renewal's payment is tied to the old period end (unique per period), its
        # retries and the grace period count from it, and a late success renews only from it:
        # moving the end would orphan that payment. Support extends once it is paid.
        raise SubscriptionPastDue(details={"status": locked.status})
    if locked.status not in EXTENDABLE_STATUSES or locked.current_period_end is None:
        raise SubscriptionNotExtendable(details={"status": locked.status})
    if expected_period_end is not None and locked.current_period_end != expected_period_end:
        raise SubscriptionChanged(details={"current_period_end": locked.current_period_end.isoformat()})
    if locked.current_period_end <= clock.now():
        # A renewal charge for this period end may be in flight (still processing at the provider): its
        # success renews only from the period end it was made for, which must stay put.
        raise RenewalUnderWay(details={"current_period_end": locked.current_period_end.isoformat()})
    previous_end = locked.current_period_end
    plan = subscription_extension_plan(subscription=locked, days=days)
    before = {
        "current_period_end": locked.current_period_end,
        "billing_anchor": locked.billing_anchor,
        "trial_end": locked.trial_end,
    }
    after = {
        "current_period_end": plan.period_end,
        "billing_anchor": plan.billing_anchor,
        # A trial runs to the period end: the extended trial ends, and is charged, at the new end.
        "trial_end": plan.period_end if locked.status == S.TRIALING else locked.trial_end,
    }
    for field, value in after.items():
        setattr(locked, field, value)
    locked.save(update_fields=[*after, "updated_at"])
    facts.subscription_extended.record(subscription=locked, previous_period_end=previous_end, days=days)
    audit_entry_create(
        actor=actor,
        action=AuditAction.SUBSCRIPTION_EXTEND,
        target=locked,
        changes=audit_changes(before, after),
        reason=reason,
        details={"days": days, "next_period_end": plan.next_period_end.isoformat()},
    )
    return locked
