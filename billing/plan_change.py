"""Plan changes: what moving a subscription to another tariff costs, and the move itself.

The rules (docs/plan-changes.md has them with worked figures):

- An **upgrade** is a tariff with a higher price per day for the same period length (compared
  exactly, on integers: `new price * months > old price * months`, never on floats), or a
  longer period at a higher price per period (monthly -> yearly: the viewer commits to more
  and pays now, although a year is cheaper per day); a shorter period is never one
  (`is_upgrade`). Periods are counted in calendar months, a year being twelve. An upgrade
  takes effect at once. With the same period length
  the period end stays and the viewer pays the difference for the time left:
  `round((new - old) * remaining / length)`; with another length a new period of the new
  tariff starts now and the unused part of the old one is credited:
  `new - round(old * remaining / length)`. `remaining` and `length` are whole seconds on the
  billing clock (`core.clock`); rounding is half up, to the minor unit; the amount is never
  negative. "old" is what the viewer actually pays for the current period (the locked price
  less any promo discount in effect), "new" the new tariff's current price less the discount
  that carries over (below).
- A **downgrade** (anything else) is scheduled for the period end: `scheduled_tariff`, which
  the renewal takes before it prices the next period, so that period is charged at the new
  tariff's price. A goodwill extension moves the period end, and the downgrade with it.
- The locked price becomes the new tariff's price at the time the change takes effect.
- **Trials**: nothing was paid, so an upgrade during a trial costs nothing and the trial keeps
  its end (no second trial: the new tariff's trial days are never given); the first charge at
  the trial's end is the new price.
- **Promo discounts** stay with the subscription (its redemption keeps the promise). With the
  same period length the periods keep being counted from the same anchor, so the discount
  carries over to the new price for the periods it has left. With another length the periods
  are counted anew, so a discount limited to a number of periods ends with the change (the
  periods already discounted stay so); a discount for every period carries over. A code for
  chosen tariffs never discounts another one: a change to a tariff it does not apply to is
  priced in full and ends the discount (`_end_limited_discount`).
- Refused: the same tariff (`tariff_unchanged`), an inactive one (`tariff_unavailable`),
  another currency (`tariff_currency_mismatch`), a pending (`subscription_pending`), past-due
  (`subscription_past_due`: pay the renewal first), ended (`subscription_ended`) or canceled
  at period end (`subscription_ending`: resume first) subscription, and a period already over
  whose renewal is under way (`renewal_under_way`).

This module decides and writes the subscription's side only; the prorated charge is
`payments.services.plan_change`'s. Every writer here expects the subscription's row lock.
"""

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils.translation import gettext_noop
from rest_framework import status

from billing import facts
from billing.locks import subscription_lock
from billing.models import Subscription, SubscriptionStatus
from billing.periods import next_period_end, period_length_in_months
from billing.pricing import discounted_amount, period_number
from core.audit import AuditAction, audit_entry_create
from core.errors import DomainError, TariffUnavailable
from tariffs.models import PromoRedemption, Tariff
from tariffs.selectors import promo_redemption_for_subscription

S = SubscriptionStatus
SECOND = timedelta(seconds=1)


class PlanChangeKind(enum.StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"


# Messages stay in English in the API (as every error does); admin shows them translated.
class PlanChangeRefused(DomainError):
    code = "plan_change_refused"
    message = gettext_noop("This subscription's plan cannot be changed now.")
    status_code = status.HTTP_409_CONFLICT


class SubscriptionPending(PlanChangeRefused):
    code = "subscription_pending"
    message = gettext_noop(
        "This subscription has not started yet: pay it first, or subscribe to the other tariff."
    )


class SubscriptionPastDueForChange(PlanChangeRefused):
    code = "subscription_past_due"
    message = gettext_noop("This subscription's renewal is unpaid: pay it first, then change the plan.")


class SubscriptionEndedForChange(PlanChangeRefused):
    code = "subscription_ended"
    message = gettext_noop("This subscription has already ended.")


class SubscriptionEnding(PlanChangeRefused):
    code = "subscription_ending"
    message = gettext_noop("This subscription is canceled at its period end: resume it first.")


class RenewalUnderWayForChange(PlanChangeRefused):
    code = "renewal_under_way"
    message = gettext_noop(
        "This subscription's period is over and its renewal is under way; try again shortly."
    )


class TariffUnchanged(DomainError):
    code = "tariff_unchanged"
    message = gettext_noop("The subscription is already on this tariff.")


class TariffCurrencyMismatch(DomainError):
    code = "tariff_currency_mismatch"
    message = gettext_noop("The plan can only change to a tariff in the subscription's currency.")


class NoScheduledChange(DomainError):
    code = "no_scheduled_change"
    message = gettext_noop("This subscription has no plan change scheduled.")
    status_code = status.HTTP_404_NOT_FOUND


# Every refusal of a change, for the API description and the admin.
PLAN_CHANGE_CONFLICTS: tuple[type[DomainError], ...] = (
    SubscriptionPending,
    SubscriptionPastDueForChange,
    SubscriptionEndedForChange,
    SubscriptionEnding,
    RenewalUnderWayForChange,
)
PLAN_CHANGE_BAD_REQUESTS: tuple[type[DomainError], ...] = (
    TariffUnavailable,
    TariffUnchanged,
    TariffCurrencyMismatch,
)


@dataclass(frozen=True)
class ChangeQuote:
    """What changing a subscription to `tariff` at `at` means: kind, price now, the period after."""

    kind: PlanChangeKind
    tariff: Tariff
    amount_due: int
    currency: str
    effective_at: datetime
    # The subscription's period and anchor once the change has taken effect.
    period_start: datetime
    period_end: datetime
    billing_anchor: datetime
    # The period the change was asked in (part of the change's idempotency key).
    from_period_start: datetime


def round_half_up(numerator: int, denominator: int) -> int:
    """Return numerator / denominator rounded to the nearest integer, halves up (both non-negative)."""
    return (2 * numerator + denominator) // (2 * denominator)


def _months(tariff: Tariff) -> int:
    return period_length_in_months(tariff.period_unit, tariff.period_count)


def is_upgrade(*, current: Tariff, current_amount: int, new: Tariff) -> bool:
    """Return whether moving from `current` (at its locked price) to `new` is an upgrade, taken now.

    With the same period length: a higher price per day (exact integers, cross-multiplied).
    To a longer period: a higher price per period (monthly 399.00 -> yearly 3,990.00 is an
    upgrade although a year costs less per day: the viewer commits to more, and pays the
    difference now). To a shorter period: never; it waits for the period end, so no paid
    time is forfeited (yearly -> monthly taken now would throw most of a paid year away).
    """
    current_months, new_months = _months(current), _months(new)
    if new_months < current_months:
        return False
    if new_months == current_months:
        return new.amount * current_months > current_amount * new_months
    return new.amount > current_amount


def _discount_for(subscription: Subscription, period_start: datetime | None) -> PromoRedemption | None:
    """Return the subscription's promo redemption if it discounts the period starting then."""
    redemption = promo_redemption_for_subscription(subscription_id=subscription.pk)
    if redemption is None:
        return None
    number = period_number(subscription=subscription, period_start=period_start)
    if redemption.periods is not None and number >= redemption.periods:
        return None
    return redemption


def _seconds(delta: timedelta) -> int:
    return max(delta // SECOND, 0)


def plan_change_check(*, subscription: Subscription, tariff: Tariff, at: datetime) -> None:
    """Raise why `subscription` cannot change to `tariff` now; return if it can (writes nothing)."""
    if subscription.status == S.PENDING:
        raise SubscriptionPending(details={"status": subscription.status})
    if subscription.status == S.PAST_DUE:
        raise SubscriptionPastDueForChange(details={"status": subscription.status})
    if subscription.status not in (S.TRIALING, S.ACTIVE) or subscription.current_period_end is None:
        raise SubscriptionEndedForChange(details={"status": subscription.status})
    if subscription.cancel_at_period_end:
        raise SubscriptionEnding(details={"cancel_at_period_end": True})
    if subscription.current_period_end <= at:
        raise RenewalUnderWayForChange(
            details={"current_period_end": subscription.current_period_end.isoformat()}
        )
    if tariff.pk == subscription.tariff_id:
        raise TariffUnchanged(details={"tariff": tariff.slug})
    if not tariff.is_active:
        raise TariffUnavailable(details={"tariff": tariff.slug})
    if tariff.currency != subscription.currency:
        raise TariffCurrencyMismatch(
            details={
                "tariff": tariff.slug,
                "currency": tariff.currency,
                "subscription_currency": subscription.currency,
            }
        )


def plan_change_quote(*, subscription: Subscription, tariff: Tariff, at: datetime) -> ChangeQuote:
    """Return what changing `subscription` to `tariff` at `at` costs and does; raise if it cannot.

    Writes nothing: the preview answers this, and the change itself applies it under the
    subscription's lock.
    """
    plan_change_check(subscription=subscription, tariff=tariff, at=at)
    start, end = subscription.current_period_start, subscription.current_period_end
    anchor = subscription.billing_anchor or start
    if start is None or end is None or anchor is None:  # not running: refused above already
        raise SubscriptionEndedForChange(details={"status": subscription.status})
    current = subscription.tariff
    if not is_upgrade(current=current, current_amount=subscription.amount, new=tariff):
        following = next_period_end(
            anchor=anchor, period_end=end, unit=tariff.period_unit, count=tariff.period_count
        )
        return ChangeQuote(
            kind=PlanChangeKind.DOWNGRADE,
            tariff=tariff,
            amount_due=0,
            currency=subscription.currency,
            effective_at=end,
            period_start=end,
            period_end=following,
            billing_anchor=anchor,
            from_period_start=start,
        )
    same_length = _months(current) == _months(tariff)
    if subscription.status == S.TRIALING or same_length:
        # The period (a trial's included) keeps its end; a trial costs nothing to upgrade.
        amount_due = 0
        if subscription.status != S.TRIALING:
            old = _what_is_paid_now(subscription)
            discount = _carried_discount(_discount_for(subscription, start), tariff)
            new = _discounted(tariff, subscription, discount)
            remaining, length = _seconds(end - at), _seconds(end - start)
            amount_due = round_half_up((new - old) * remaining, length) if new > old and length else 0
        return ChangeQuote(
            kind=PlanChangeKind.UPGRADE,
            tariff=tariff,
            amount_due=amount_due,
            currency=subscription.currency,
            effective_at=at,
            period_start=start,
            period_end=end,
            billing_anchor=anchor,
            from_period_start=start,
        )
    old = _what_is_paid_now(subscription)
    redemption = promo_redemption_for_subscription(subscription_id=subscription.pk)
    # Periods are counted anew from now: only a discount for every period carries over.
    every_period = redemption if redemption is not None and redemption.periods is None else None
    carried = _carried_discount(every_period, tariff)
    new = _discounted(tariff, subscription, carried)
    remaining, length = _seconds(end - at), _seconds(end - start)
    credit = round_half_up(old * remaining, length) if length else 0
    new_end = next_period_end(anchor=at, period_end=at, unit=tariff.period_unit, count=tariff.period_count)
    return ChangeQuote(
        kind=PlanChangeKind.UPGRADE,
        tariff=tariff,
        amount_due=max(new - credit, 0),
        currency=subscription.currency,
        effective_at=at,
        period_start=at,
        period_end=new_end,
        billing_anchor=at,
        from_period_start=start,
    )


def _carried_discount(redemption: PromoRedemption | None, tariff: Tariff) -> PromoRedemption | None:
    """Return the discount the new tariff keeps: none from a code that does not apply to it."""
    if redemption is None or not promo_applies_to(redemption=redemption, tariff=tariff):
        return None
    return redemption


def _what_is_paid_now(subscription: Subscription) -> int:
    """Return the price the viewer pays for the current period: the locked one, less its discount."""
    discount = _discount_for(subscription, subscription.current_period_start)
    return _discounted_price(subscription.amount, subscription.currency, discount)


def _discounted(tariff: Tariff, subscription: Subscription, discount: PromoRedemption | None) -> int:
    return _discounted_price(tariff.amount, subscription.currency, discount)


def _discounted_price(amount: int, currency: str, discount: PromoRedemption | None) -> int:
    if discount is None:
        return amount
    return discounted_amount(amount=amount, currency=currency, redemption=discount)


def plan_change_key(*, subscription: Subscription, tariff: Tariff, generation: int = 0) -> str:
    """Return the key of an upgrade of `subscription` to `tariff` in its current period.

    It names what is changed and what it is priced on (subscription, from-tariff, to-tariff, the
    period's start and end), so a retried or double-clicked request derives the same key and the
    provider charges once. The end is part of it because the price is: a goodwill extension
    between the two steps of a change makes the same move another, dearer change, which must
    not be paid by the charge priced before it. `generation` counts the earlier changes of that
    move that are spent: applied, or given up after their payment took money that was given back
    (`payments.services.plan_change._change_to_pay`). Asked again, the move is a new change with a
    new payment, never paid by a refunded one.
    """
    return f"{plan_change_key_base(subscription=subscription, tariff=tariff)}:{generation}"


def plan_change_key_base(*, subscription: Subscription, tariff: Tariff) -> str:
    """Return the part of the change key that names the move and its period (no generation)."""
    start = subscription.current_period_start or subscription.created_at
    end = subscription.current_period_end or start
    return (
        f"change:{subscription.pk}:{subscription.tariff_id}:{tariff.pk}"
        f":{start:%Y%m%dT%H%M%SZ}:{end:%Y%m%dT%H%M%SZ}"
    )


def plan_change_key_is_current(*, key: str, subscription: Subscription, tariff: Tariff) -> bool:
    """Return whether a change key names the move to `tariff` in the subscription's current period as it is now."""
    return key.rpartition(":")[0] == plan_change_key_base(subscription=subscription, tariff=tariff)


def promo_applies_to(*, redemption: PromoRedemption, tariff: Tariff) -> bool:
    """Return whether a redemption's code may discount `tariff` (a code for chosen tariffs, only those)."""
    # `.all()`: the tariffs a list prefetched (payments.selectors.subscription_list) are not asked again.
    restricted_to = {tariff.pk for tariff in redemption.promo.tariffs.all()}
    return not restricted_to or tariff.pk in restricted_to


def discount_carries_over(*, redemption: PromoRedemption, previous: Tariff, new: Tariff) -> bool:
    """Return whether a promo discount goes on discounting the subscription after moving to `new`.

    Not when its code does not apply to `new` (a code for chosen tariffs), nor, with another
    period length, when it is limited to a number of periods (they are counted anew from the
    change); a discount for every period on a code that applies carries over.
    """
    if not promo_applies_to(redemption=redemption, tariff=new):
        return False
    return redemption.periods is None or _months(previous) == _months(new)


def _end_limited_discount(
    subscription: Subscription, previous: Tariff, new: Tariff, *, first_full_price: datetime | None
) -> dict[str, Any]:
    """End the discount where the change ends it; return the audit's note of it (empty: it goes on).

    - A code for chosen tariffs never discounts another one: moving to a tariff it does not
      apply to ends the discount from the period starting at `first_full_price` (the current
      period for an upgrade, whose rest is now priced in full; the next one for a downgrade
      taken at renewal). The periods already discounted stay so (the audit keeps what it was).
    - With another period length periods are counted anew, so a discount limited to N periods
      ends with the change; one for every period carries over.
    """
    redemption = promo_redemption_for_subscription(subscription_id=subscription.pk)
    if redemption is None or discount_carries_over(redemption=redemption, previous=previous, new=new):
        return {}
    # With another length periods are counted anew from the new anchor: a discount of the first
    # 0 periods discounts nothing more. With the same length (a code that does not apply to
    # `new`), none from the period at `first_full_price` on.
    periods = 0
    if _months(previous) == _months(new):
        periods = period_number(subscription=subscription, period_start=first_full_price)
    before = redemption.periods
    if before is not None and before <= periods:
        return {}  # it has ended by then already
    PromoRedemption.objects.filter(pk=redemption.pk).update(periods=periods)
    return {"promo_periods": [before, periods]}


def _audit(
    subscription: Subscription,
    *,
    actor: AbstractBaseUser | None,
    before: dict[str, Any],
    reason: str,
    details: dict[str, Any],
) -> None:
    after = {
        "tariff": subscription.tariff.slug,
        "amount": subscription.amount,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "billing_anchor": subscription.billing_anchor,
        "scheduled_tariff": subscription.scheduled_tariff.slug if subscription.scheduled_tariff else None,
    }
    audit_entry_create(
        actor=actor if actor is not None else AnonymousUser(),
        action=AuditAction.SUBSCRIPTION_CHANGE,
        target=subscription,
        changes={
            field: (before.get(field), value) for field, value in after.items() if before.get(field) != value
        },
        reason=reason,
        details={"requested_by": "staff" if actor is not None else "viewer", **details},
    )


def _snapshot(subscription: Subscription) -> dict[str, Any]:
    return {
        "tariff": subscription.tariff.slug,
        "amount": subscription.amount,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "billing_anchor": subscription.billing_anchor,
        "scheduled_tariff": subscription.scheduled_tariff.slug if subscription.scheduled_tariff else None,
    }


def subscription_upgrade_apply(
    *,
    subscription: Subscription,
    quote: ChangeQuote,
    amount_paid: int,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
) -> Subscription:
    """Move a locked subscription to the upgrade's tariff now (its charge, if any, is paid).

    The locked price becomes the new tariff's current price, the period and anchor are the
    quote's, and any scheduled downgrade is dropped (the viewer chose again).
    """
    before = _snapshot(subscription)
    previous = subscription.tariff
    subscription.tariff = quote.tariff
    subscription.amount = quote.tariff.amount
    subscription.current_period_start = quote.period_start
    subscription.current_period_end = quote.period_end
    subscription.billing_anchor = quote.billing_anchor
    subscription.scheduled_tariff = None
    subscription.save(
        update_fields=[
            "tariff",
            "amount",
            "current_period_start",
            "current_period_end",
            "billing_anchor",
            "scheduled_tariff",
            "updated_at",
        ]
    )
    promo = _end_limited_discount(
        subscription, previous, quote.tariff, first_full_price=subscription.current_period_start
    )
    facts.subscription_changed.record(
        subscription=subscription,
        previous_tariff=previous,
        kind=PlanChangeKind.UPGRADE,
        amount_due=amount_paid,
        effective_at=quote.effective_at,
    )
    _audit(
        subscription,
        actor=actor,
        before=before,
        reason=reason,
        details={"kind": "upgrade", "amount_due": amount_paid, "currency": quote.currency, **promo},
    )
    return subscription


@transaction.atomic
def subscription_downgrade_schedule(
    *,
    subscription: Subscription,
    tariff: Tariff,
    at: datetime,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
) -> tuple[Subscription, ChangeQuote]:
    """Schedule a downgrade for the period end (the renewal takes it); return the subscription and quote.

    Scheduling the same downgrade again changes nothing; another one replaces it.
    """
    locked = subscription_lock(subscription.pk)
    quote = plan_change_quote(subscription=locked, tariff=tariff, at=at)
    if quote.kind != PlanChangeKind.DOWNGRADE:
        raise PlanChangeRefused(details={"kind": quote.kind})
    if locked.scheduled_tariff_id != tariff.pk:
        before = _snapshot(locked)
        locked.scheduled_tariff = tariff
        locked.save(update_fields=["scheduled_tariff", "updated_at"])
        _audit(locked, actor=actor, before=before, reason=reason, details={"kind": "downgrade_scheduled"})
    return locked, quote


@transaction.atomic
def subscription_scheduled_change_withdraw(
    *, subscription: Subscription, actor: AbstractBaseUser | None = None, reason: str = ""
) -> Subscription:
    """Withdraw a scheduled downgrade; raise `NoScheduledChange` when there is none."""
    locked = subscription_lock(subscription.pk)
    if locked.scheduled_tariff_id is None:
        raise NoScheduledChange()
    before = _snapshot(locked)
    locked.scheduled_tariff = None
    locked.save(update_fields=["scheduled_tariff", "updated_at"])
    _audit(locked, actor=actor, before=before, reason=reason, details={"kind": "downgrade_withdrawn"})
    return locked


def subscription_scheduled_change_take(*, subscription: Subscription) -> Subscription:
    """At the renewal of a locked subscription, switch to its scheduled tariff before the period is priced.

    The renewal then ends the next period by the new tariff's length and charges its price,
    which becomes the locked price. A subscription with nothing scheduled is left as it is.
    """
    scheduled = subscription.scheduled_tariff
    if scheduled is None:
        return subscription
    before = _snapshot(subscription)
    previous = subscription.tariff
    subscription.tariff = scheduled
    subscription.amount = scheduled.amount
    subscription.scheduled_tariff = None
    subscription.save(update_fields=["tariff", "amount", "scheduled_tariff", "updated_at"])
    # The period being renewed starts at the current period's end: the first one priced in full.
    promo = _end_limited_discount(
        subscription, previous, scheduled, first_full_price=subscription.current_period_end
    )
    effective_at = subscription.current_period_end or subscription.updated_at
    facts.subscription_changed.record(
        subscription=subscription,
        previous_tariff=previous,
        kind=PlanChangeKind.DOWNGRADE,
        amount_due=0,
        effective_at=effective_at,
    )
    audit_entry_create(
        actor=AnonymousUser(),
        action=AuditAction.SUBSCRIPTION_CHANGE,
        target=subscription,
        changes={
            "tariff": (before["tariff"], scheduled.slug),
            "amount": (before["amount"], scheduled.amount),
        },
        reason="",
        details={"requested_by": "renewal", "kind": "downgrade", **promo},
    )
    return subscription
