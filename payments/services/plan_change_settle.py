"""Applying a paid upgrade: the part of plan changes that settling a checkout or a charge needs.

Kept apart from `payments.services.plan_change` (which charges, and opens pages through the
checkout package) so that the checkout settlement can call it without an import cycle.
"""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_noop
from rest_framework import status

from billing.models import PlanChange, PlanChangeStatus, Subscription
from billing.plan_change import (
    ChangeQuote,
    PlanChangeKind,
    plan_change_key_is_current,
    plan_change_quote,
    subscription_upgrade_apply,
)
from core import clock
from core.errors import DomainError
from payments.models import Payment


class SubscriptionChangedSince(DomainError):
    code = "subscription_changed"
    message = gettext_noop(
        "The subscription changed since this plan change was asked for. Check it and try again."
    )
    status_code = status.HTTP_409_CONFLICT


class PlanChangeRepriced(SubscriptionChangedSince):
    """The same move is still possible, but its period was moved (a goodwill extension): another price."""


def plan_change_current_quote(subscription: Subscription, change: PlanChange, now: datetime) -> ChangeQuote:
    """Price a pending change again (locked subscription); raise if it is no longer the change asked for.

    `PlanChangeRepriced` when only the period's end moved since: the move is a new change, priced
    on the new period, and the money asked for the old one must not pay for it.
    """
    quote = plan_change_quote(subscription=subscription, tariff=change.to_tariff, at=now)
    same_change = (
        quote.kind == PlanChangeKind.UPGRADE
        and subscription.tariff_id == change.from_tariff_id
        and subscription.current_period_start == change.period_start
    )
    if not same_change:
        raise SubscriptionChangedSince()
    if not plan_change_key_is_current(key=change.key, subscription=subscription, tariff=change.to_tariff):
        raise PlanChangeRepriced()
    return quote


def plan_change_payment_settle(
    *, subscription: Subscription, payment: Payment, actor: AbstractBaseUser | None = None, reason: str = ""
) -> bool:
    """Apply the change a paid change payment paid for; return False if it has no home any more.

    The caller holds the subscription's and the payment's locks and has recorded the payment
    as paid; it then records `payment_succeeded` (homed) or refunds it (not homed). True also
    for a change already applied by this payment (a repeated settlement).
    """
    change = PlanChange.objects.select_related("to_tariff").filter(key=payment.idempotency_key).first()
    if change is None:
        return False
    if change.status == PlanChangeStatus.APPLIED:
        return True
    now = clock.now()
    try:
        quote = plan_change_current_quote(subscription, change, now)
    except DomainError:
        change.status = PlanChangeStatus.ABANDONED
        change.save(update_fields=["status", "updated_at"])
        return False
    # The payment pays for the new tariff from now to the period end (the ledger earns it so).
    payment.period_start, payment.period_end = now, quote.period_end
    payment.save(update_fields=["period_start", "period_end", "updated_at"])
    subscription_upgrade_apply(
        subscription=subscription, quote=quote, amount_paid=payment.amount, actor=actor, reason=reason
    )
    plan_change_mark_applied(change, amount=payment.amount, at=now)
    return True


def plan_change_mark_applied(change: PlanChange, *, amount: int, at: datetime) -> None:
    """Record that a change took effect at `at` for `amount` (under its subscription's lock)."""
    change.status, change.applied_at, change.amount_due = PlanChangeStatus.APPLIED, at, amount
    change.save(update_fields=["status", "applied_at", "amount_due", "updated_at"])
