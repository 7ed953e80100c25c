"""Support cancels a viewer's subscription: now or at the period end, with or without a refund.

The cancellation itself goes through `billing.services` (`subscription_cancel_now`,
`subscription_cancel`, `subscription_set_autopay`) under the subscription's row lock, and is
written to the audit log in the same transaction, with the form's token (`request_key`). The
refund of what is left of the current paid period follows once that has committed, outside
any lock (it calls the provider), through `payments.services.refunds.staff.refund_create` with the same
token: the refund service's rules hold (exactly once per token, never more than is left, the
approval threshold, its lock order). A form sent twice finds its audit entry under the
subscription's lock and cancels nothing more; its refund is the one the token already made.

The refund is the unused part of the paid period running at the moment the confirmation
page showed (`priced_at`, on the billing clock): the payment's amount times the seconds left
of its period over the period's seconds, rounded to minor units, and never more than is left
of that payment.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils.translation import gettext_noop
from rest_framework import status

from billing.locks import subscription_lock
from billing.models import Subscription, SubscriptionStatus
from billing.services import subscription_cancel, subscription_cancel_now, subscription_set_autopay
from core import clock
from core.audit import AuditAction, audit_changes, audit_entry_create
from core.errors import DomainError
from payments.models import Payment, Refund, RefundReason
from payments.services.refunds.rules import REFUNDABLE_PAYMENT_STATUSES, refund_left_amount
from payments.services.refunds.staff import refund_create

S = SubscriptionStatus
CANCELABLE_STATUSES = (S.TRIALING, S.ACTIVE, S.PAST_DUE)
# How old the confirmation page's pricing may be when it is confirmed.
PRICING_VALID_FOR = timedelta(hours=1)


class SubscriptionNotCancelable(DomainError):
    code = "subscription_not_cancelable"
    message = gettext_noop("Only a trialing, active or past-due subscription can be canceled.")
    status_code = status.HTTP_409_CONFLICT


class CancellationInvalid(DomainError):
    code = "cancellation_invalid"
    message = gettext_noop(
        "A cancellation needs a reason, and what is left is refunded only when access ends now."
    )


class CancellationStale(DomainError):
    code = "cancellation_stale"
    message = gettext_noop("The confirmation is out of date; open the form again.")


@dataclass(frozen=True)
class CancellationPlan:
    """What a cancellation does: when access ends, and what is refunded of which payment."""

    ends_now: bool
    access_until: datetime | None
    payment: Payment | None
    refund_amount: int
    currency: str
    unused_seconds: int
    paid_seconds: int


@dataclass(frozen=True)
class CancellationOutcome:
    subscription: Subscription
    refund: Refund | None
    # A DomainError's message when the refund service refused the refund (the cancel stands).
    refund_error: str
    # True when this form had already been carried out: nothing more was canceled.
    repeated: bool


def prorated_amount(
    *, amount: int, period_start: datetime, period_end: datetime, at: datetime
) -> tuple[int, int, int]:
    """Return (amount for the unused part, unused seconds, period seconds) of a period paid `amount`.

    Whole seconds on the billing clock; the amount is rounded half up to minor units.
    """
    paid = int((period_end - period_start).total_seconds())
    if paid <= 0:
        return 0, 0, 0
    unused = max(0, min(paid, int((period_end - at).total_seconds())))
    return (2 * amount * unused + paid) // (2 * paid), unused, paid


def current_paid_payment(*, subscription: Subscription, at: datetime) -> Payment | None:
    """Return the paid (not wholly refunded) payment whose period runs at `at`, if any."""
    return (
        Payment.objects.filter(
            subscription=subscription,
            status__in=REFUNDABLE_PAYMENT_STATUSES,
            period_start__lte=at,
            period_end__gt=at,
        )
        .order_by("-period_start")
        .first()
    )


def subscription_cancellation_plan(
    *, subscription: Subscription, now: bool, refund: bool, at: datetime
) -> CancellationPlan:
    """Return what cancelling at `at` does: `now` ends access at once, else at the period end.

    A past-due subscription has no paid period left and always ends at once. With `refund`
    (only when access ends now) the unused part of the paid period running at `at` is
    refunded, capped at what is left of its payment; a trial or a period no payment covers
    (goodwill days, a renewal being retried) refunds nothing.
    """
    ends_now = now or subscription.status == S.PAST_DUE
    access_until = at if ends_now else subscription.current_period_end
    payment = current_paid_payment(subscription=subscription, at=at) if refund and ends_now else None
    amount = unused = paid = 0
    if payment is not None and payment.period_start is not None and payment.period_end is not None:
        amount, unused, paid = prorated_amount(
            amount=payment.amount, period_start=payment.period_start, period_end=payment.period_end, at=at
        )
        amount = min(amount, refund_left_amount(payment=payment))
    return CancellationPlan(
        ends_now=ends_now,
        access_until=access_until,
        payment=payment if amount > 0 else None,
        refund_amount=amount,
        currency=payment.currency if payment is not None else subscription.currency,
        unused_seconds=unused,
        paid_seconds=paid,
    )


def _cancellation_entry(subscription: Subscription, request_key: uuid.UUID) -> LogEntry | None:
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Subscription),
        object_pk=str(subscription.pk),
        additional_data__action=AuditAction.SUBSCRIPTION_CANCEL.value,
        additional_data__request_key=str(request_key),
    ).first()


def _snapshot(subscription: Subscription) -> dict[str, Any]:
    return {
        "status": subscription.status,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "autopay": subscription.autopay,
        "ended_at": subscription.ended_at,
    }


def subscription_cancel_by_staff(
    *,
    subscription: Subscription,
    now: bool,
    refund: bool,
    actor: User,
    reason: str,
    request_key: uuid.UUID,
    refund_reason: str = RefundReason.REQUESTED_BY_CUSTOMER,
    priced_at: datetime | None = None,
) -> CancellationOutcome:
    """Cancel a subscription for a viewer, once per `request_key`, and refund what is left.

    `now` ends access at once; otherwise the subscription runs to its period end with autopay
    off. `refund` (only with `now`) refunds the unused part of the paid period as priced at
    `priced_at` (the moment the confirmation showed, at most PRICING_VALID_FOR ago; default
    now). Refused with a `DomainError`: no reason or a refund at the period end
    (`CancellationInvalid`), a stale pricing (`CancellationStale`), a subscription that is
    pending or over (`SubscriptionNotCancelable`). A refund the refund service refuses leaves
    the cancellation done and is reported in `refund_error`.
    """
    reason = reason.strip()
    if not reason or (refund and not now):
        raise CancellationInvalid(details={"now": now, "refund": refund})
    current = clock.now()
    priced_at = priced_at or current
    if not current - PRICING_VALID_FOR <= priced_at <= current:
        raise CancellationStale(details={"priced_at": priced_at.isoformat()})
    with transaction.atomic():
        locked = subscription_lock(subscription.pk)
        entry = _cancellation_entry(locked, request_key)
        if entry is not None:
            details = entry.additional_data or {}
            payment_id, amount, repeated = (
                details.get("refund_payment"),
                details.get("refund_amount", 0),
                True,
            )
            canceled = locked
        else:
            if locked.status not in CANCELABLE_STATUSES:
                raise SubscriptionNotCancelable(details={"status": locked.status})
            plan = subscription_cancellation_plan(subscription=locked, now=now, refund=refund, at=priced_at)
            before = _snapshot(locked)
            if plan.ends_now and locked.status != S.PAST_DUE:
                canceled = subscription_cancel_now(subscription=locked, at=current)
            else:
                # At the period end; a past-due subscription ends at once (and its retries stop).
                canceled = subscription_cancel(subscription=locked, at=current)
                if canceled.status in CANCELABLE_STATUSES:
                    canceled = subscription_set_autopay(subscription=canceled, enabled=False)
            payment_id = str(plan.payment.pk) if plan.payment is not None else None
            amount, repeated = plan.refund_amount, False
            audit_entry_create(
                actor=actor,
                action=AuditAction.SUBSCRIPTION_CANCEL,
                target=canceled,
                changes=audit_changes(before, _snapshot(canceled)),
                reason=reason,
                details={
                    "request_key": str(request_key),
                    "ends_now": plan.ends_now,
                    "access_until": plan.access_until.isoformat() if plan.access_until else None,
                    "refund_requested": refund,
                    "refund_payment": payment_id,
                    "refund_amount": amount,
                    "currency": plan.currency,
                    "priced_at": priced_at.isoformat(),
                    "unused_seconds": plan.unused_seconds,
                    "paid_seconds": plan.paid_seconds,
                },
            )
    made, error = None, ""
    if payment_id and amount:
        try:
            made = refund_create(
                payment=Payment.objects.get(pk=payment_id),
                amount=amount,
                reason=refund_reason,
                comment=f"Subscription canceled by support: {reason}",
                # Access has already ended with the cancellation; the flag tells the viewer's
                # refund email so (and a later refund-ending check finds nothing left to end).
                end_access=True,
                created_by=actor,
                request_key=request_key,
            )
        except DomainError as exc:
            error = exc.message
    return CancellationOutcome(subscription=canceled, refund=made, refund_error=error, repeated=repeated)
