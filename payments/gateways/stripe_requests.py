"""The parameters of Stripe's calls that take the most building: a checkout page and an off-session charge.

Built from the gateway's plain requests (amounts in minor units, upper-case currencies) into
the SDK's typed parameters (lower-case currencies, Unix seconds).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from payments.gateways.base import CheckoutRequest, OffSessionCharge

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams
    from stripe.params.checkout import SessionCreateParams


def build_checkout_params(request: CheckoutRequest) -> SessionCreateParams:
    """Return the Checkout Session parameters for a request (amounts in minor units)."""
    params: SessionCreateParams = {
        "mode": request.mode,
        "customer": request.customer_id,
        "client_reference_id": request.client_reference_id,
        "metadata": dict(request.metadata),
        "success_url": with_session_id(request.success_url),
        "cancel_url": with_session_id(request.cancel_url),
    }
    if request.expires_at is not None:
        params["expires_at"] = math.floor(request.expires_at.timestamp())
    if request.locale:
        params["locale"] = request.locale
    if request.mode == "payment":
        if request.amount is None or not request.product_name:
            raise ValueError("a payment checkout needs an amount and a product name")
        # One line item built from price_data: the price we locked for this payment, not a
        # catalogue Price object at Stripe that could change under us.
        params["line_items"] = [
            {
                "quantity": 1,
                "price_data": {
                    "currency": request.currency.lower(),
                    "unit_amount": request.amount,
                    "product_data": {"name": request.product_name},
                },
            }
        ]
        # The PaymentIntent carries the same metadata, so a payment_intent.* event can be
        # matched to our payment without fetching the session.
        params["payment_intent_data"] = {"metadata": dict(request.metadata)}
        if request.save_payment_method:
            params["payment_intent_data"]["setup_future_usage"] = "off_session"
    else:
        # Setup mode with dynamic payment methods needs a currency to choose them by.
        params["currency"] = request.currency.lower()
        params["setup_intent_data"] = {"metadata": dict(request.metadata)}
    return params


def build_off_session_params(charge: OffSessionCharge) -> PaymentIntentCreateParams:
    """Return the PaymentIntent parameters that charge a saved payment method off-session."""
    params: PaymentIntentCreateParams = {
        "amount": charge.amount,
        "currency": charge.currency.lower(),
        "customer": charge.customer_id,
        "payment_method": charge.payment_method_id,
        "off_session": True,
        "confirm": True,
        "metadata": dict(charge.metadata),
        # Expanded so that the result carries the card it was paid with.
        "expand": ["payment_method"],
    }
    if charge.description:
        params["description"] = charge.description
    return params


def with_session_id(url: str) -> str:
    """Return a return address that Stripe fills with its Checkout Session's id on the way back.

    `{CHECKOUT_SESSION_ID}` is Stripe's own placeholder; an address that already carries it
    is left as it is.
    """
    if "{CHECKOUT_SESSION_ID}" in url:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}session_id={{CHECKOUT_SESSION_ID}}"
