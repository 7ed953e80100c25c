"""What Stripe's events tell us, as the gateway's facts (`base.EventFact`).

The one place that knows Stripe's event types and the JSON of the objects they carry; the
domain acts on the facts. Events of other types are not acted on (stored, then "ignored").
The in-memory provider records events in Stripe's shapes, as the offline sandbox does, and
reads them here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from payments.gateways.base import (
    CheckoutChanged,
    EventFact,
    GatewayEvent,
    PaymentChanged,
    PaymentMethodSaved,
    PaymentRefundsChanged,
    RefundChanged,
)
from payments.gateways.errors import PaymentDecline
from payments.gateways.stripe_mapping import (
    decline_kind,
    payment_intent_from_stripe,
    read_id,
    read_metadata,
    refund_from_stripe,
    unexpected_response,
)


def event_fact_from_stripe(event: GatewayEvent) -> EventFact | None:
    """Return the fact a Stripe event stands for, or None for a type we do not act on."""
    reader = _READERS.get(event.type)
    return reader(event) if reader is not None else None


def _checkout_changed(event: GatewayEvent) -> CheckoutChanged:
    if not event.object_id:
        raise unexpected_response("checkout event without the session's id")
    return CheckoutChanged(checkout_ref=event.object_id)


def _payment_changed(event: GatewayEvent) -> PaymentChanged:
    intent = payment_intent_from_stripe(event.object)
    succeeded = event.type == "payment_intent.succeeded"
    decline: PaymentDecline | None = None
    if not succeeded and intent.failure_code == "authentication_required":
        decline = "authentication_required"
    elif not succeeded:
        decline = decline_kind(intent.decline_code or intent.failure_code)
    return PaymentChanged(
        payment_ref=intent.id,
        succeeded=succeeded,
        decline=decline,
        our_payment_id=intent.metadata.get("payment_id"),
        our_checkout_id=intent.metadata.get("checkout_id"),
    )


def _charge_refunded(event: GatewayEvent) -> PaymentRefundsChanged:
    charge = event.object
    refunds = charge.get("refunds")
    listed = refunds.get("data") if isinstance(refunds, Mapping) else None
    total = charge.get("amount_refunded")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise unexpected_response("charge without a readable amount_refunded")
    return PaymentRefundsChanged(
        payment_ref=read_id(charge.get("payment_intent")),
        charge_ref=read_id(charge.get("id")),
        refunded_total=total,
        refunds=tuple(refund_from_stripe(item) for item in listed or () if isinstance(item, Mapping)),
    )


def _refund_changed(event: GatewayEvent) -> RefundChanged:
    return RefundChanged(refund=refund_from_stripe(event.object))


def _payment_method_saved(event: GatewayEvent) -> PaymentMethodSaved:
    if not event.object_id:
        raise unexpected_response("setup event without the SetupIntent's id")
    metadata = read_metadata(event.object.get("metadata"))
    return PaymentMethodSaved(setup_ref=event.object_id, our_checkout_id=metadata.get("checkout_id"))


_READERS: dict[str, Callable[[GatewayEvent], EventFact]] = {
    "checkout.session.completed": _checkout_changed,
    "checkout.session.async_payment_succeeded": _checkout_changed,
    "checkout.session.async_payment_failed": _checkout_changed,
    "checkout.session.expired": _checkout_changed,
    "payment_intent.succeeded": _payment_changed,
    "payment_intent.payment_failed": _payment_changed,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund_changed,
    "refund.updated": _refund_changed,
    "refund.failed": _refund_changed,
    "charge.refund.updated": _refund_changed,
    "setup_intent.succeeded": _payment_method_saved,
}
