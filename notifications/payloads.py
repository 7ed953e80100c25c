"""The JSON shapes of subscriptions and payments inside events and notice facts."""

from datetime import UTC, datetime
from typing import Any

from billing.models import Subscription
from payments.models import Payment


def iso(moment: datetime | None) -> str | None:
    """Return an instant as ISO 8601 in UTC with a `Z` (as the API writes it), or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def subscription_data(subscription: Subscription) -> dict[str, Any]:
    """Return what an event says of a subscription: its state right after the change."""
    tariff = subscription.tariff
    return {
        "id": str(subscription.pk),
        "status": subscription.status,
        "tariff": {"id": tariff.pk, "slug": tariff.slug, "name": tariff.name},
        "amount": subscription.amount,
        "currency": subscription.currency,
        "autopay": subscription.autopay,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "current_period_start": iso(subscription.current_period_start),
        "current_period_end": iso(subscription.current_period_end),
        "trial_end": iso(subscription.trial_end),
        "canceled_at": iso(subscription.canceled_at),
        "ended_at": iso(subscription.ended_at),
    }


def payment_data(payment: Payment) -> dict[str, Any]:
    """Return what an event says of a payment (amounts in minor units, card as the provider reports it)."""
    card = {"brand": payment.card_brand, "last4": payment.card_last4} if payment.card_last4 else None
    return {
        "id": str(payment.pk),
        "kind": payment.kind,
        "status": payment.status,
        "amount": payment.amount,
        "refunded_amount": payment.refunded_amount,
        "currency": payment.currency,
        "period_start": iso(payment.period_start),
        "period_end": iso(payment.period_end),
        "paid_at": iso(payment.paid_at),
        "card": card,
        "failure_code": payment.failure_code or None,
        "failed_attempts": payment.failed_attempts,
    }
