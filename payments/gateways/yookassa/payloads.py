"""The JSON bodies the YooKassa gateway sends: payments (a page, a card-saving hold, a renewal),
refunds, and the 54-FZ receipt each of them carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments.gateways.base import CheckoutRequest, OffSessionCharge, RefundRequest
from payments.gateways.errors import PermanentGatewayError
from payments.gateways.yookassa.mapping import CUSTOMER_KEY, MODE_KEY, REFERENCE_KEY, amount_json

# A card is saved without taking money by holding this much (two-stage, `capture: false`) and
# releasing the hold at once: YooKassa saves a method only with a payment, and 1.00 RUB is the
# smallest card payment it takes.
CARD_CHECK_AMOUNT = 100
CARD_CHECK_DESCRIPTION = "Card check"

# YooKassa's limits: a description of at most 128 characters, as is a receipt item's.
MAX_DESCRIPTION = 128


@dataclass(frozen=True, slots=True)
class ReceiptSettings:
    """What every receipt item says besides its name and amount (settings YOOKASSA_VAT_CODE, ...).

    `vat_code` is YooKassa's code (1: no VAT, 4: 20%, 11: 22%, the standard rate from 1 January
    2026, ...); `payment_subject` "service" and `payment_mode` "full_payment" describe a
    subscription paid in full. `enabled=False` sends no receipt (a shop without 54-FZ receipts).
    """

    vat_code: int = 11
    payment_subject: str = "service"
    payment_mode: str = "full_payment"
    enabled: bool = True


def receipt(
    settings: ReceiptSettings, *, email: str, item_name: str, amount: int, currency: str
) -> dict[str, Any] | None:
    """Return the receipt of one item (quantity 1) for `email`, or None when receipts are off."""
    if not settings.enabled:
        return None
    if not email:
        # A receipt without its recipient is refused by YooKassa; refuse it here, before any call.
        raise PermanentGatewayError(
            "a YooKassa receipt needs the customer's email", code="receipt_email_missing"
        )
    return {
        "customer": {"email": email},
        "items": [
            {
                "description": item_name[:MAX_DESCRIPTION] or CARD_CHECK_DESCRIPTION,
                "quantity": "1.00",
                "amount": amount_json(amount, currency),
                "vat_code": settings.vat_code,
                "payment_subject": settings.payment_subject,
                "payment_mode": settings.payment_mode,
            }
        ],
    }


def _metadata(ours: dict[str, str], **extra: str | None) -> dict[str, str]:
    metadata = dict(ours)
    metadata.update({key: value for key, value in extra.items() if value})
    return metadata


def checkout_payment_body(request: CheckoutRequest, settings: ReceiptSettings) -> dict[str, Any]:
    """Return the payment that is a checkout page: paid in one stage, or held to save the card."""
    setup = request.mode == "setup"
    amount = CARD_CHECK_AMOUNT if setup else int(request.amount or 0)
    name = CARD_CHECK_DESCRIPTION if setup else str(request.product_name)
    body: dict[str, Any] = {
        "amount": amount_json(amount, request.currency),
        # Two-stage for a card check: the hold is released, never captured.
        "capture": not setup,
        "confirmation": {"type": "redirect", "return_url": request.success_url},
        "description": name[:MAX_DESCRIPTION],
        "metadata": _metadata(
            request.metadata,
            **{
                MODE_KEY: request.mode,
                CUSTOMER_KEY: request.customer_id,
                REFERENCE_KEY: request.client_reference_id,
            },
        ),
    }
    if setup or request.save_payment_method:
        body["save_payment_method"] = True
    if request.locale in ("ru", "en"):
        body["confirmation"]["locale"] = "ru_RU" if request.locale == "ru" else "en_US"
    check = receipt(
        settings, email=request.receipt_email, item_name=name, amount=amount, currency=request.currency
    )
    if check is not None:
        body["receipt"] = check
    return body


def off_session_body(charge: OffSessionCharge, settings: ReceiptSettings) -> dict[str, Any]:
    """Return a renewal's payment: the saved method, captured at once, no customer present."""
    name = charge.description or "Subscription"
    body: dict[str, Any] = {
        "amount": amount_json(charge.amount, charge.currency),
        "capture": True,
        "payment_method_id": charge.payment_method_id,
        "description": name[:MAX_DESCRIPTION],
        "metadata": _metadata(charge.metadata, **{MODE_KEY: "off_session", CUSTOMER_KEY: charge.customer_id}),
    }
    check = receipt(
        settings, email=charge.receipt_email, item_name=name, amount=charge.amount, currency=charge.currency
    )
    if check is not None:
        body["receipt"] = check
    return body


def refund_body(
    request: RefundRequest, *, amount: int, currency: str, settings: ReceiptSettings
) -> dict[str, Any]:
    """Return a refund of `amount` (YooKassa needs the amount always: the caller fills in the rest)."""
    body: dict[str, Any] = {
        "payment_id": request.payment_intent_id,
        "amount": amount_json(amount, currency),
    }
    if request.reason:
        body["description"] = request.reason
    if request.metadata:
        body["metadata"] = dict(request.metadata)
    check = receipt(
        settings,
        email=request.receipt_email,
        item_name=request.receipt_item_name or "Subscription",
        amount=amount,
        currency=currency,
    )
    if check is not None:
        body["receipt"] = check
    return body
