"""YooKassa's notifications: read into a GatewayEvent, and what each tells us as a fact.

YooKassa signs nothing and numbers nothing: a notification is `{"type": "notification",
"event", "object"}`. Its id is made from what it says (event, object id, object status), so a
notification delivered twice is stored once. Being unsigned, it is only a hint: every fact
names an object the webhook handler reads again from YooKassa's API by id, never the body.
"""

from __future__ import annotations

import json
from typing import Any

from yookassa.domain.notification import WebhookNotificationFactory

from payments.gateways.base import (
    CheckoutChanged,
    EventFact,
    GatewayEvent,
    PaymentChanged,
    PaymentMethodSaved,
    RefundChanged,
)
from payments.gateways.errors import GatewayError, InvalidWebhookSignature
from payments.gateways.yookassa.mapping import (
    MODE_KEY,
    parse_time,
    payment_decline,
    refund_from_model,
)

PAYMENT_EVENTS = ("payment.succeeded", "payment.waiting_for_capture", "payment.canceled")
REFUND_EVENTS = ("refund.succeeded",)


def event_from_notification(payload: bytes) -> GatewayEvent:
    """Return the event a notification body carries; raise InvalidWebhookSignature if it is not one."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise InvalidWebhookSignature(f"not a YooKassa notification: {exc}", code="invalid_payload") from exc
    if not isinstance(data, dict) or data.get("type") != "notification":
        raise InvalidWebhookSignature("not a YooKassa notification", code="invalid_payload")
    event, obj = data.get("event"), data.get("object")
    if not isinstance(event, str) or not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise InvalidWebhookSignature("a notification without event or object id", code="invalid_payload")
    if event in PAYMENT_EVENTS + REFUND_EVENTS:
        try:
            # The SDK's own reading of the body: a notification it cannot read is not one.
            WebhookNotificationFactory().create(data)
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidWebhookSignature(
                f"unreadable YooKassa notification: {exc}", code="invalid_payload"
            ) from exc
    status = str(obj.get("status") or "")
    try:
        created = parse_time(obj.get("created_at"), "notification")
    except GatewayError as exc:
        raise InvalidWebhookSignature(
            "a notification whose object has no created_at", code="invalid_payload"
        ) from exc
    return GatewayEvent(
        id=f"{event}:{obj['id']}:{status}"[:255],
        type=event,
        created=created,
        object_id=str(obj["id"]),
        object=obj,
    )


def object_kind(event: GatewayEvent) -> str | None:
    """Return which object a notification is about ("payment", "refund"), or None for one we ignore."""
    if event.type in PAYMENT_EVENTS:
        return "payment"
    if event.type in REFUND_EVENTS:
        return "refund"
    return None


def fact_from_payment(model: Any) -> EventFact | None:
    """Return what a payment, as freshly read from YooKassa, tells us (its status, not the event's)."""
    metadata = model.metadata or {}
    mode = metadata.get(MODE_KEY)
    status = str(model.status)
    reason = model.cancellation_details.reason if model.cancellation_details else None
    if mode == "off_session":
        # A renewal's charge: the renewal re-reads it by id.
        if status == "succeeded":
            return PaymentChanged(
                payment_ref=str(model.id), succeeded=True, our_payment_id=metadata.get("payment_id")
            )
        if status == "canceled":
            return PaymentChanged(
                payment_ref=str(model.id),
                succeeded=False,
                decline=payment_decline(reason),
                our_payment_id=metadata.get("payment_id"),
            )
        return None
    if status == "pending":
        return None  # nothing happened yet, whatever the notification claims
    if mode == "setup" and status == "waiting_for_capture":
        return PaymentMethodSaved(setup_ref=str(model.id), our_checkout_id=metadata.get("checkout_id"))
    if mode == "setup" and reason == "canceled_by_merchant":
        return None  # our own release of a card check's hold
    # A page paid, declined or left to expire: the page is re-read and settled.
    return CheckoutChanged(checkout_ref=str(model.id))


def fact_from_refund(model: Any) -> EventFact:
    """Return what a refund, as freshly read from YooKassa, tells us."""
    return RefundChanged(refund=refund_from_model(model))
