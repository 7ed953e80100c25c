"""Renewals and dunning: charge the saved card for the next period, exactly once.

A renewal runs under the subscription's row lock (`SELECT … FOR UPDATE SKIP LOCKED`), so two
jobs over the same due set never charge one subscription twice, and a cancel that commits
before the lock is taken is seen before any charge. The renewal payment is unique per
(subscription, period), and the charge's idempotency key derives from the subscription, the
period and the number of declines already recorded: a worker killed mid-charge and its task
redelivered sends the same key, so the provider answers with the first charge instead of a second.
"""

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from billing.locks import subscription_lock
from billing.models import Subscription, SubscriptionStatus
from billing.periods import next_period_end
from billing.plan_change import subscription_scheduled_change_take
from billing.pricing import amount_for_period
from billing.services import subscription_expire, subscription_mark_past_due, subscription_renew_locked
from core import clock
from core.inserts import insert_or_ignore
from core.log_context import log_context, log_context_add
from core.metrics import counts_renewals
from payments import facts
from payments.gateways import get_gateway
from payments.gateways.base import ProviderPayment
from payments.gateways.errors import AuthenticationRequired, CardDeclined
from payments.models import (
    PAID_STATUSES,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
)
from payments.selectors import provider_customer_get, subscription_provider
from payments.services.checkout import (
    checkout_abandon,
    checkout_open,
    checkout_prepare_for_payment,
    payment_mark_succeeded,
    renewal_payment_has_home,
)
from payments.services.customers import off_session_charge
from payments.services.unhomed import payment_refund_unhomed

logger = logging.getLogger(__name__)
S = SubscriptionStatus


class RenewalOutcome(enum.StrEnum):
    RENEWED = "renewed"
    DECLINED = "declined"
    AUTHENTICATION_REQUIRED = "authentication_required"
    PROCESSING = "processing"
    NOT_DUE = "not_due"
    LOCKED = "locked"
    # Paid, but the subscription had ended meanwhile: the charge was refunded in full.
    REFUNDED = "refunded"


def _due_filter(now: datetime) -> Q:
    renewing = Q(
        status__in=(S.ACTIVE, S.TRIALING),
        autopay=True,
        cancel_at_period_end=False,
        current_period_end__lte=now,
    )
    retrying = Q(status=S.PAST_DUE, next_renewal_attempt_at__lte=now)
    return renewing | retrying


def renewals_due(*, now: datetime, limit: int, after: UUID | None = None) -> list[UUID]:
    """Return ids of subscriptions whose renewal (or dunning retry) is due, in id order."""
    due = Subscription.objects.filter(_due_filter(now))
    if after is not None:
        due = due.filter(pk__gt=after)
    return list(due.order_by("pk").values_list("pk", flat=True)[:limit])


def renewal_idempotency_key(payment: Payment) -> str:
    """Return the key of the next off-session charge of a renewal payment.

    Each declined attempt moves it on (a provider replays a stored decline for the same
    key); anything short of a recorded decline — a crash, a timeout — keeps it.
    """
    return (
        f"renewal:{payment.subscription_id}:{payment.period_start:%Y%m%dT%H%M%SZ}:{payment.failed_attempts}"
    )


@dataclass(frozen=True)
class _Due:
    period_start: datetime
    period_end: datetime


def _is_due(subscription: Subscription, now: datetime) -> bool:
    """Return whether a locked subscription is due: the row-level twin of `_due_filter`."""
    if subscription.status in (S.ACTIVE, S.TRIALING):
        period_end = subscription.current_period_end
        over = period_end is not None and period_end <= now
        return subscription.autopay and not subscription.cancel_at_period_end and over
    retry_at = subscription.next_renewal_attempt_at
    return subscription.status == S.PAST_DUE and retry_at is not None and retry_at <= now


def _due_period(subscription: Subscription, now: datetime) -> _Due | None:
    start, anchor = subscription.current_period_end, subscription.billing_anchor
    if not _is_due(subscription, now) or start is None or anchor is None:
        return None
    tariff = subscription.tariff
    end = next_period_end(
        anchor=anchor,
        period_end=start,
        unit=tariff.period_unit,
        count=tariff.period_count,
    )
    return _Due(period_start=start, period_end=end)


RENEWALS = Q(kind=PaymentKind.RENEWAL)

# Renewal payment ids derive from what they pay for: a renewal retried after a crash or a lost
# answer rebuilds the very same request (metadata included), which the provider then replays.
RENEWAL_PAYMENT_NAMESPACE = uuid.UUID("7d2c4a3e-9b1f-4f53-a0a4-0d6f2b3c9e41")


def renewal_payment_id(subscription: Subscription, period_start: datetime) -> uuid.UUID:
    """Return the id of the renewal payment of one subscription's period."""
    return uuid.uuid5(RENEWAL_PAYMENT_NAMESPACE, f"{subscription.pk}:{period_start.isoformat()}")


def renewal_would_make(*, subscription: Subscription, payment_id: str) -> bool:
    """Return whether a subscription's next renewal is the one that makes payment `payment_id`.

    A renewal payment's id derives from the period it pays for: read under the subscription's
    lock, a match says that renewal is still to come, and will send the same idempotency key,
    so a charge the provider already took for it is answered again, not made twice.
    """
    due = _due_period(subscription, clock.now())
    return due is not None and str(renewal_payment_id(subscription, due.period_start)) == payment_id


def _renewal_payment(subscription: Subscription, due: _Due) -> Payment:
    """Return the locked renewal payment of a due period: made now, or the one an earlier try made."""
    payment = Payment(
        id=renewal_payment_id(subscription, due.period_start),
        subscription=subscription,
        kind=PaymentKind.RENEWAL,
        period_start=due.period_start,
        amount=amount_for_period(subscription=subscription, period_start=due.period_start),
        currency=subscription.currency,
        provider=subscription_provider(subscription=subscription),
        period_end=due.period_end,
        idempotency_key=f"renewal:{subscription.pk}:{due.period_start:%Y%m%dT%H%M%SZ}",
    )
    # One statement for the usual case, a first try (`one_renewal_payment_per_period`).
    if insert_or_ignore(payment, conflict_fields=("subscription", "period_start"), partial=RENEWALS):
        return payment
    return Payment.objects.select_for_update().get(
        subscription=subscription, kind=PaymentKind.RENEWAL, period_start=due.period_start
    )


@counts_renewals  # every outcome, and every error, in billing_renewals_total (docs/operations.md)
@log_context()  # its log lines name the subscription, then the payment and the charge's key
def renewal_run(*, subscription_id: UUID) -> RenewalOutcome:
    """Renew one subscription if it is due, charging its saved card off-session.

    Temporary provider failures propagate (nothing is recorded, the caller retries with the
    same key); declines are recorded and drive dunning.
    """
    log_context_add(subscription_id=subscription_id)
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("account", "tariff", "scheduled_tariff")
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            return RenewalOutcome.LOCKED
        now = clock.now()
        scheduled = subscription.scheduled_tariff_id is not None and subscription.status != S.PAST_DUE
        if scheduled and _is_due(subscription, now):
            # A downgrade the viewer scheduled takes effect now: the period it starts is priced,
            # and lasts, as the new tariff says (billing/plan_change.py).
            subscription_scheduled_change_take(subscription=subscription)
        due = _due_period(subscription, now)
        if due is None:
            return RenewalOutcome.NOT_DUE
        payment = _renewal_payment(subscription, due)
        log_context_add(payment_id=payment.pk, idempotency_key=renewal_idempotency_key(payment))
        if payment.status == PaymentStatus.SUCCEEDED:
            subscription_renew_locked(
                locked=subscription, period_start=due.period_start, period_end=due.period_end
            )
            return RenewalOutcome.RENEWED
        if payment.amount == 0:
            _mark_paid(subscription, payment, intent=None, now=now)
            subscription_renew_locked(
                locked=subscription, period_start=due.period_start, period_end=due.period_end
            )
            return RenewalOutcome.RENEWED
        return _charge(subscription, payment, due, now)


def _charge(subscription: Subscription, payment: Payment, due: _Due, now: datetime) -> RenewalOutcome:
    # The payment's provider charges the method saved there.
    saved = provider_customer_get(account_id=subscription.account_id, provider=payment.provider)
    if saved is None or not saved.payment_method_ref:
        _record_decline(
            subscription, payment, due, code="no_saved_card", message="No card is saved.", hard=True
        )
        return RenewalOutcome.DECLINED
    try:
        intent = get_gateway(payment.provider).charge_off_session(
            off_session_charge(
                saved=saved,
                payment=payment,
                subscription=subscription,
                description=f"{subscription.tariff.name} renewal",
                idempotency_key=renewal_idempotency_key(payment),
            )
        )
    except AuthenticationRequired as exc:
        _record_authentication_required(subscription, payment, due, exc.payment_intent_id)
        return RenewalOutcome.AUTHENTICATION_REQUIRED
    except CardDeclined as exc:
        # Any other provider error is our request's fault, not the card's: it propagates and
        # records nothing (the transaction rolls back), so no viewer is taken for a defaulter.
        payment.provider_payment_id = exc.payment_intent_id or payment.provider_payment_id
        _record_decline(
            subscription,
            payment,
            due,
            code=exc.decline_code or exc.code or "card_declined",
            message=exc.message,
            hard=exc.kind == "hard",
        )
        return RenewalOutcome.DECLINED
    if intent.status != "succeeded":
        return _record_processing(payment, intent)
    # Still in renewal_run's transaction, under the subscription's lock: apply the charge to
    # the row read under it rather than lock and read it again.
    return _apply_succeeded(subscription, payment, intent)


def renewal_apply_intent(*, payment: Payment, intent: ProviderPayment) -> RenewalOutcome:
    """Apply what the provider says of a renewal's payment (an event, a re-read, a sweep).

    A succeeded charge is always booked: it moves the subscription into the period it paid
    for, or, when the subscription can no longer take that period (it ended meanwhile), it
    is refunded in full. The subscription is locked before the payment (the lock order).
    """
    if intent.status != "succeeded":
        return _record_processing(payment, intent)
    with transaction.atomic():
        subscription = subscription_lock(payment.subscription_id)
        return _apply_succeeded(subscription, Payment.objects.select_for_update().get(pk=payment.pk), intent)


def _apply_succeeded(subscription: Subscription, locked: Payment, intent: ProviderPayment) -> RenewalOutcome:
    """Book a succeeded renewal charge: both rows locked and current, in the caller's transaction."""
    newly_paid = locked.status not in PAID_STATUSES
    if newly_paid:
        payment_mark_succeeded(payment=locked, intent=intent, card=intent.card, now=clock.now())
    if renewal_payment_has_home(subscription, locked):
        # The payment is told before the new period, as the other services expect.
        if newly_paid:
            facts.payment_succeeded.record(payment=locked, subscription=subscription)
        subscription_renew_locked(
            locked=subscription,
            period_start=locked.period_start,  # type: ignore[arg-type]
            period_end=locked.period_end,  # type: ignore[arg-type]
        )
    elif newly_paid:
        payment_refund_unhomed(payment=locked, subscription_status=subscription.status)
        return RenewalOutcome.REFUNDED
    return RenewalOutcome.RENEWED


def _record_processing(payment: Payment, intent: ProviderPayment) -> RenewalOutcome:
    """Keep the provider's id of a charge still in progress: its event or a re-read settles it."""
    Payment.objects.filter(pk=payment.pk, provider_payment_id__isnull=True).update(
        provider_payment_id=intent.id
    )
    return RenewalOutcome.PROCESSING


def _mark_paid(
    subscription: Subscription, payment: Payment, *, intent: ProviderPayment | None, now: datetime
) -> None:
    payment_mark_succeeded(payment=payment, intent=intent, card=intent.card if intent else None, now=now)
    facts.payment_succeeded.record(payment=payment, subscription=subscription)


def _next_retry(due: _Due, failed_attempts: int) -> datetime | None:
    schedule = settings.BILLING_RENEWAL_RETRY_DAYS
    if failed_attempts > len(schedule):
        return None
    return due.period_start + timedelta(days=schedule[failed_attempts - 1])


def _record_decline(
    subscription: Subscription, payment: Payment, due: _Due, *, code: str, message: str, hard: bool
) -> None:
    payment.failed_attempts += 1
    payment.status = PaymentStatus.FAILED
    payment.failure_code, payment.failure_message = code, message
    payment.save()
    if hard:
        # No retry can help: access holds through the grace period, then the subscription
        # expires (payments.services.renewals.subscriptions_expire_due).
        subscription_mark_past_due(subscription=subscription, retry_at=None)
        facts.renewal_declined.record(subscription=subscription, payment=payment)
        return
    retry_at = _next_retry(due, payment.failed_attempts)
    if retry_at is None:
        subscription_expire(subscription=subscription, at=clock.now())
    else:
        subscription_mark_past_due(subscription=subscription, retry_at=retry_at)
    facts.renewal_declined.record(subscription=subscription, payment=payment)


def _record_authentication_required(
    subscription: Subscription, payment: Payment, due: _Due, payment_intent_id: str | None
) -> None:
    """Ask the viewer to pay this renewal on a Checkout page, where their bank can confirm it."""
    payment.status = PaymentStatus.FAILED
    payment.failure_code = "authentication_required"
    payment.failure_message = "The bank asks the card holder to confirm this payment."
    payment.provider_payment_id = payment_intent_id or payment.provider_payment_id
    payment.save()
    subscription_mark_past_due(subscription=subscription, retry_at=None)
    checkout = checkout_prepare_for_payment(payment=payment)
    # The page is opened after commit: a provider outage then leaves a checkout to open later
    # (`renewal_checkout_url`) rather than undoing the recorded decline.
    transaction.on_commit(lambda: _open_quietly(checkout))
    facts.renewal_needs_authentication.record(subscription=subscription, payment=payment)


def _open_quietly(checkout: CheckoutSession) -> None:
    try:
        checkout_open(checkout_id=checkout.pk)
    except Exception:
        logger.warning("could not open the authentication checkout %s yet", checkout.pk, exc_info=True)


def subscriptions_expire_due(*, now: datetime) -> int:
    """End the subscriptions whose paid time is over; return how many ended.

    Canceled or autopay-off subscriptions end at their period end; past-due ones with no
    retry left end when the grace period is over.
    """
    grace = settings.BILLING_GRACE_PERIOD
    ending = Subscription.objects.filter(
        Q(status__in=(S.ACTIVE, S.TRIALING), current_period_end__lte=now)
        & (Q(cancel_at_period_end=True) | Q(autopay=False))
        | Q(status=S.PAST_DUE, next_renewal_attempt_at__isnull=True, current_period_end__lte=now - grace)
    )
    ended = 0
    for subscription in ending.iterator():
        with transaction.atomic():
            locked = (
                Subscription.objects.select_for_update(skip_locked=True).filter(pk=subscription.pk).first()
            )
            if locked is None or locked.status not in (S.ACTIVE, S.TRIALING, S.PAST_DUE):
                continue
            subscription_expire(subscription=locked, at=now)
            ended += 1
        # A renewal page the viewer never paid must not take money for an ended subscription.
        for checkout in CheckoutSession.objects.filter(subscription=subscription, status=CheckoutStatus.OPEN):
            try:
                checkout_abandon(checkout=checkout)
            except Exception:
                logger.warning(
                    "could not close checkout %s of ended subscription", checkout.pk, exc_info=True
                )
    return ended
