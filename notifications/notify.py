"""What each change of a subscription or payment tells the cinema's services and the viewer.

billing and payments call these at the moment of the change, inside its transaction (one
line at each emit point). They only write: outbox events (`event_publish`) and notices
(`notice_record`), both of which vanish with a rolled-back transaction; workers send them
after the commit.
"""

from datetime import datetime

from django.conf import settings

from billing.locks import subscription_lock
from billing.models import Subscription, SubscriptionStatus
from notifications.models import EventType, NoticeKind
from notifications.payloads import iso, payment_data, subscription_data
from notifications.services.events import event_publish
from notifications.services.notices import notice_record
from payments.gateways import get_gateway
from payments.models import Payment, RefundRequest, RefundStatus
from payments.selectors import provider_customer_get
from tariffs.models import Tariff

S = SubscriptionStatus
E = EventType
K = NoticeKind


def _card(payment: Payment, subscription: Subscription) -> dict[str, str]:
    """Return the card a payment was made with as its provider reported it (else the card saved there)."""
    if payment.card_last4:
        return {"card_brand": payment.card_brand, "card_last4": payment.card_last4}
    saved = provider_customer_get(account_id=subscription.account_id, provider=payment.provider)
    if saved is None:
        return {"card_brand": "", "card_last4": ""}
    return {"card_brand": saved.card_brand, "card_last4": saved.card_last4}


def _expiry_reason(subscription: Subscription) -> str:
    if subscription.cancel_at_period_end:
        return "canceled"
    if not subscription.autopay:
        return "autopay_off"
    return "payment_failed"


def subscription_status_changed(*, subscription: Subscription, previous: str) -> None:
    """Tell what a status change means for access (called by `billing.services._transition`).

    pending → trialing/active and past_due → active grant access; → expired and → canceled
    revoke it (a pending subscription never had any, so its cancel says nothing).
    """
    to = subscription.status
    data = {"subscription": subscription_data(subscription), "previous_status": previous}
    if to in (S.TRIALING, S.ACTIVE) and previous in (S.PENDING, S.PAST_DUE):
        event_publish(type=E.ACCESS_GRANTED, subscription=subscription, payload=data)
    elif to == S.EXPIRED:
        event_publish(type=E.ACCESS_REVOKED, subscription=subscription, payload={**data, "reason": "expired"})
        event_publish(type=E.SUBSCRIPTION_EXPIRED, subscription=subscription, payload=data)
        notice_record(
            kind=K.EXPIRED,
            subscription=subscription,
            period_start=subscription.current_period_start or subscription.created_at,
            context={
                "tariff_name": subscription.tariff.name_for(subscription.account.language),
                "ended_at": iso(subscription.ended_at),
                "period_end": iso(subscription.current_period_end),
                "reason": _expiry_reason(subscription),
            },
        )
    elif to == S.CANCELED and previous != S.PENDING:
        event_publish(
            type=E.ACCESS_REVOKED, subscription=subscription, payload={**data, "reason": "canceled"}
        )
        event_publish(
            type=E.SUBSCRIPTION_CANCELED,
            subscription=subscription,
            payload={**data, "at_period_end": False, "access_until": iso(subscription.ended_at)},
        )


def subscription_canceled(*, subscription: Subscription) -> None:
    """Tell that the viewer canceled a running subscription: access holds to the period end."""
    event_publish(
        type=E.SUBSCRIPTION_CANCELED,
        subscription=subscription,
        payload={
            "subscription": subscription_data(subscription),
            "previous_status": subscription.status,
            "at_period_end": True,
            "access_until": iso(subscription.current_period_end),
        },
    )


def subscription_renewed(*, subscription: Subscription) -> None:
    """Tell that a subscription entered the next period a renewal paid for."""
    event_publish(
        type=E.SUBSCRIPTION_RENEWED,
        subscription=subscription,
        payload={"subscription": subscription_data(subscription)},
    )


def subscription_extended(*, subscription: Subscription, previous_period_end: datetime, days: int) -> None:
    """Tell that support gave a subscription more days of its current period, free.

    Services that keep access until the period end learn of the later end; an ending-soon
    email already recorded for the old end is not sent (it is stale), and one for the new end
    is recorded when that end comes near.
    """
    event_publish(
        type=E.SUBSCRIPTION_EXTENDED,
        subscription=subscription,
        payload={
            "subscription": subscription_data(subscription),
            "previous_period_end": iso(previous_period_end),
            "days": days,
        },
    )


def subscription_changed(
    *, subscription: Subscription, previous_tariff: Tariff, kind: str, amount_due: int, effective_at: datetime
) -> None:
    """Tell that a subscription moved to another tariff, and email the viewer what changed.

    An upgrade takes effect when its prorated charge is paid; a downgrade at the renewal that
    takes it (the renewal's receipt follows). One email per change: keyed by its moment.
    """
    language = subscription.account.language
    event_publish(
        type=E.SUBSCRIPTION_CHANGED,
        subscription=subscription,
        payload={
            "subscription": subscription_data(subscription),
            "previous_tariff": {
                "id": previous_tariff.pk,
                "slug": previous_tariff.slug,
                "name": previous_tariff.name,
            },
            "kind": kind,
            "amount_due": amount_due,
            "currency": subscription.currency,
            "effective_at": iso(effective_at),
        },
    )
    notice_record(
        kind=K.SUBSCRIPTION_CHANGED,
        subscription=subscription,
        period_start=effective_at,
        reference=f"tariff:{subscription.tariff_id}",
        context={
            "tariff_name": subscription.tariff.name_for(language),
            "previous_tariff_name": previous_tariff.name_for(language),
            # Not "kind": the renderer puts the notice's own kind there.
            "change_kind": kind,
            "amount_due": amount_due,
            "price": subscription.amount,
            "currency": subscription.currency,
            "effective_at": iso(effective_at),
            "period_end": iso(subscription.current_period_end),
            "renews": subscription.autopay and not subscription.cancel_at_period_end,
        },
    )


def payment_succeeded(*, payment: Payment, subscription: Subscription) -> None:
    """Tell that a payment succeeded, and send the viewer a receipt (`subscription`: locked, current)."""
    event_publish(
        type=E.PAYMENT_SUCCEEDED,
        subscription=subscription,
        payload={"subscription": subscription_data(subscription), "payment": payment_data(payment)},
    )
    if payment.amount == 0:
        return  # a period a promo code made free: nothing was charged, nothing to receipt
    notice_record(
        kind=K.PAYMENT_SUCCEEDED,
        subscription=subscription,
        period_start=payment.period_start or payment.paid_at or payment.created_at,
        payment=payment,
        context={
            "tariff_name": subscription.tariff.name_for(subscription.account.language),
            "payment_id": str(payment.pk),
            "amount": payment.amount,
            "currency": payment.currency,
            "period_start": iso(payment.period_start),
            "period_end": iso(payment.period_end),
            "paid_at": iso(payment.paid_at),
            **_card(payment, subscription),
        },
    )


def _access_until(subscription: Subscription, period_start: datetime | None) -> str | None:
    start = period_start or subscription.current_period_end
    return iso(start + settings.BILLING_GRACE_PERIOD) if start else None


def renewal_declined(*, subscription: Subscription, payment: Payment) -> None:
    """Tell that a renewal charge was declined and what happens next (called once its outcome is recorded).

    When the decline ended the subscription, the expiry notice tells the viewer instead.
    """
    subscription = subscription_lock(subscription.pk)
    event_publish(
        type=E.PAYMENT_FAILED,
        subscription=subscription,
        payload={
            "subscription": subscription_data(subscription),
            "payment": payment_data(payment),
            "next_retry_at": iso(subscription.next_renewal_attempt_at),
            "action_required": False,
        },
    )
    if subscription.status != S.PAST_DUE or payment.period_start is None:
        return
    notice_record(
        kind=K.RENEWAL_FAILED,
        subscription=subscription,
        period_start=payment.period_start,
        reference=str(payment.failed_attempts),
        payment=payment,
        context={
            "tariff_name": subscription.tariff.name_for(subscription.account.language),
            "amount": payment.amount,
            "currency": payment.currency,
            "failure_code": payment.failure_code,
            # What the decline means for the viewer, in words of ours whatever the provider.
            "decline_reason": get_gateway(payment.provider).decline_reason(payment.failure_code),
            "next_retry_at": iso(subscription.next_renewal_attempt_at),
            "access_until": _access_until(subscription, payment.period_start),
            **_card(payment, subscription),
        },
    )


def renewal_needs_authentication(*, subscription: Subscription, payment: Payment) -> None:
    """Tell that the bank wants the viewer to confirm a renewal, and send them the link."""
    subscription = subscription_lock(subscription.pk)
    event_publish(
        type=E.PAYMENT_FAILED,
        subscription=subscription,
        payload={
            "subscription": subscription_data(subscription),
            "payment": payment_data(payment),
            "next_retry_at": None,
            "action_required": True,
        },
    )
    if payment.period_start is None:
        return
    notice_record(
        kind=K.AUTHENTICATION_REQUIRED,
        subscription=subscription,
        period_start=payment.period_start,
        payment=payment,
        context={
            "tariff_name": subscription.tariff.name_for(subscription.account.language),
            "amount": payment.amount,
            "currency": payment.currency,
            "period_start": iso(payment.period_start),
            "period_end": iso(payment.period_end),
            "access_until": _access_until(subscription, payment.period_start),
        },
    )


def payment_refunded(*, payment: Payment, amount: int) -> None:
    """Tell that `amount` more of a payment was refunded (the payment row already says the total)."""
    subscription = subscription_lock(payment.subscription_id)
    event_publish(
        type=E.PAYMENT_REFUNDED,
        subscription=subscription,
        payload={
            "subscription": subscription_data(subscription),
            "payment": payment_data(payment),
            "refund": {"amount": amount, "currency": payment.currency},
        },
    )
    notice_record(
        kind=K.REFUND_ISSUED,
        subscription=subscription,
        period_start=payment.period_start or payment.paid_at or payment.created_at,
        reference=f"{payment.pk}:{payment.refunded_amount}",
        payment=payment,
        context={
            "tariff_name": subscription.tariff.name_for(subscription.account.language),
            "refund_amount": amount,
            "refunded_total": payment.refunded_amount,
            "payment_amount": payment.amount,
            "currency": payment.currency,
            "full": payment.refunded_amount >= payment.amount,
            # A refund that ends access cancels the subscription before the payment moves
            # (payments.services.refunds.provider_answers): the email then says that access has ended.
            "access_ended": subscription.status == S.CANCELED
            and payment.refunds.filter(status=RefundStatus.SUCCEEDED, end_access=True).exists(),
            "paid_at": iso(payment.paid_at),
            **_card(payment, subscription),
        },
    )


def refund_request_rejected(*, refund_request: RefundRequest) -> None:
    """Tell the viewer that support refused their refund request, and why (the staff's note).

    One notice per request. The caller holds the subscription's lock, taken before the
    payment's (`payment_lock_for_refund`); nothing is published to the cinema's services,
    since nothing changed for access or money.
    """
    payment = refund_request.payment
    subscription = Subscription.objects.select_related("account", "tariff").get(pk=payment.subscription_id)
    notice_record(
        kind=K.REFUND_REQUEST_REJECTED,
        subscription=subscription,
        period_start=payment.period_start or payment.paid_at or payment.created_at,
        reference=str(refund_request.pk),
        payment=payment,
        context={
            "tariff_name": subscription.tariff.name_for(subscription.account.language),
            "payment_amount": payment.amount,
            "currency": payment.currency,
            "paid_at": iso(payment.paid_at),
            "note": refund_request.decision_note,
        },
    )
