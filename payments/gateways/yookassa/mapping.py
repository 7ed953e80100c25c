"""Read YooKassa's answers with the official SDK's models and turn them into the gateway's values.

Every object that arrives is first built into the SDK's response class (`PaymentResponse`,
`RefundResponse`), which checks its shape; our dataclasses are then read from the model. No SDK
type leaves this package. Decline reasons are classified here, in one table (docs/gateway.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from yookassa.domain.response import PaymentResponse, RefundResponse
from yookassa.domain.response.payment_method_response import (
    SavePaymentMethodBankCardResponse,
)

from payments.gateways.base import (
    CardInfo,
    ChargeInfo,
    CheckoutPaymentStatus,
    CheckoutSession,
    CheckoutStatus,
    PaymentMethodSetup,
    ProviderPayment,
    RefundInfo,
    RefundState,
    SettlementLine,
)
from payments.gateways.errors import DeclineKind, DeclineReason, PaymentDecline, PermanentGatewayError

# Keys of ours that every payment carries in YooKassa's `metadata`, besides the caller's.
MODE_KEY = "checkout_mode"  # "payment", "setup" (a card-saving hold) or "off_session"
CUSTOMER_KEY = "customer_id"
REFERENCE_KEY = "client_reference_id"
OUR_KEYS = frozenset({MODE_KEY, CUSTOMER_KEY, REFERENCE_KEY})

# A page YooKassa has not been paid on is canceled (`expired_on_confirmation`) after this long;
# YooKassa does not say when in the object, so a pending page is given this much from creation.
PENDING_PAYMENT_LIFETIME_SECONDS = 3600

# --- declines -----------------------------------------------------------------------------

# Every `cancellation_details.reason` YooKassa documents for a payment, and what it means for
# the next attempt: "soft" may pass later (dunning retries), "hard" never will, and
# "authentication_required" wants the customer present (3-D Secure). None: not a decline (we
# canceled it, or it was never paid), so it is nothing to retry.
CANCELLATION_REASONS: dict[str, PaymentDecline | None] = {
    "3d_secure_failed": "authentication_required",
    "call_issuer": "soft",
    "canceled_by_merchant": None,
    "card_expired": "hard",
    "country_forbidden": "hard",
    "deal_expired": None,
    "expired_on_capture": None,
    "expired_on_confirmation": None,
    "fraud_suspected": "hard",
    "general_decline": "soft",
    "identification_required": "hard",
    "insufficient_funds": "soft",
    "internal_timeout": "soft",
    "invalid_card_number": "hard",
    "invalid_csc": "hard",
    "issuer_unavailable": "soft",
    "payment_method_limit_exceeded": "soft",
    "payment_method_restricted": "hard",
    "permission_revoked": "hard",
    "rejected_by_timeout": "soft",
    "unsupported_mobile_operator": "hard",
}

_VIEWER_REASONS: dict[str, DeclineReason] = {
    "insufficient_funds": "insufficient_funds",
    "payment_method_limit_exceeded": "insufficient_funds",
    "card_expired": "card_expired",
    "country_forbidden": "card_blocked",
    "fraud_suspected": "card_blocked",
    "payment_method_restricted": "card_blocked",
    "permission_revoked": "card_blocked",
}


def decline_kind(reason: str | None) -> DeclineKind:
    """Return whether a decline with this reason may pass later ("soft") or never ("hard")."""
    kind = CANCELLATION_REASONS.get(reason or "")
    return "hard" if kind == "hard" else "soft"


def payment_decline(reason: str | None) -> PaymentDecline | None:
    """Return what a canceled payment's reason means for the next attempt, or None if no decline."""
    if reason is None:
        return "soft"
    if reason not in CANCELLATION_REASONS:
        # A reason YooKassa added after this table: a decline we cannot judge, tried again.
        return "soft"
    return CANCELLATION_REASONS[reason]


def decline_reason(reason: str | None) -> DeclineReason:
    """Return what a decline reason means for the viewer, in our words."""
    return _VIEWER_REASONS.get(reason or "", "other")


# --- money and times ----------------------------------------------------------------------


def amount_json(amount: int, currency: str) -> dict[str, str]:
    """Return YooKassa's amount object for minor units: 39900 RUB -> {"value": "399.00", ...}."""
    return {"value": f"{Decimal(amount) / 100:.2f}", "currency": currency}


def minor_units(value: Any, what: str) -> int:
    """Return an SDK amount (or its JSON) as integer minor units; every YooKassa currency has 2."""
    raw = getattr(value, "value", None) if not isinstance(value, Mapping) else value.get("value")
    try:
        cents = Decimal(str(raw)) * 100
    except (InvalidOperation, ValueError) as exc:
        raise unexpected_response(f"{what} without a readable amount") from exc
    if cents != cents.to_integral_value():
        raise unexpected_response(f"{what} has more than two decimals")
    return int(cents)


def currency_of(value: Any, what: str) -> str:
    """Return an SDK amount's currency in upper case."""
    code = getattr(value, "currency", None) if not isinstance(value, Mapping) else value.get("currency")
    if not isinstance(code, str) or len(code) != 3:
        raise unexpected_response(f"{what} without a currency")
    return code.upper()


def parse_time(value: Any, what: str) -> datetime:
    """Return one of YooKassa's ISO 8601 times ("2026-12-06T21:00:00.000Z") as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        raise unexpected_response(f"{what} without a time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise unexpected_response(f"{what} has an unreadable time") from exc
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Return an aware datetime as YooKassa writes times (UTC, milliseconds, Z)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# --- objects ------------------------------------------------------------------------------


def parse_payment(data: Mapping[str, Any]) -> Any:
    """Return YooKassa's payment JSON as the SDK's PaymentResponse, refusing one without id or status."""
    try:
        model = PaymentResponse(dict(data))
    except (TypeError, ValueError, KeyError) as exc:
        raise unexpected_response(f"unreadable payment: {exc}") from exc
    if not model.id or not model.status or model.amount is None:
        raise unexpected_response("payment without id, status or amount")
    return model


def parse_refund(data: Mapping[str, Any]) -> Any:
    """Return YooKassa's refund JSON as the SDK's RefundResponse, refusing one without id or status."""
    try:
        model = RefundResponse(dict(data))
    except (TypeError, ValueError, KeyError) as exc:
        raise unexpected_response(f"unreadable refund: {exc}") from exc
    if not model.id or not model.status or model.amount is None:
        raise unexpected_response("refund without id, status or amount")
    return model


def parse_saved_method(data: Mapping[str, Any]) -> Any:
    """Return a saved method's JSON (GET /payment_methods/{id}) as the SDK's bank card model."""
    if data.get("type") != "bank_card":
        return None
    try:
        model = SavePaymentMethodBankCardResponse(dict(data))
    except (TypeError, ValueError, KeyError) as exc:
        raise unexpected_response(f"unreadable payment method: {exc}") from exc
    if not model.id:
        raise unexpected_response("payment method without id")
    return model


def our_metadata(model: Any) -> dict[str, str]:
    """Return the caller's metadata of a payment, without the keys this package adds."""
    return {k: str(v) for k, v in (model.metadata or {}).items() if k not in OUR_KEYS}


def _meta(model: Any, key: str) -> str | None:
    value = (model.metadata or {}).get(key)
    return str(value) if value not in (None, "") else None


def is_setup(model: Any) -> bool:
    """Return whether a payment is a card-saving hold (a trial's or a card update's page)."""
    return _meta(model, MODE_KEY) == "setup"


def _reason(model: Any) -> str | None:
    details = model.cancellation_details
    return str(details.reason) if details is not None and details.reason else None


def _saved_method_id(model: Any) -> str | None:
    method = model.payment_method
    if method is None or not getattr(method, "saved", False):
        return None
    return str(method.id) if method.id else None


def card_from_payment_method(method: Any) -> CardInfo | None:
    """Return what we may show of a payment method's card, or None when it is not a card."""
    if (
        method is None
        or str(getattr(method, "type", "")) != "bank_card"
        or getattr(method, "card", None) is None
    ):
        return None
    card = method.card
    first6 = str(getattr(card, "first6", "") or "")
    last4 = str(card.last4 or "")
    exp_month = int(card.expiry_month or 0)
    exp_year = int(card.expiry_year or 0)
    # YooKassa names no stable id of a card number; BIN, last four and expiry together are the
    # closest, and only their hash is kept (one trial per card).
    fingerprint = hashlib.sha256(f"{first6}:{last4}:{exp_month}:{exp_year}".encode()).hexdigest()[:16]
    return CardInfo(
        payment_method_id=str(method.id),
        brand=str(getattr(card, "card_type", "") or "").lower(),
        last4=last4,
        exp_month=exp_month,
        exp_year=exp_year,
        fingerprint=fingerprint,
    )


def provider_status(model: Any) -> str:
    """Return a payment's status in the words the domain reads (Stripe's, see docs/gateway.md)."""
    status = str(model.status)
    if status == "succeeded":
        return "succeeded"
    if status == "waiting_for_capture":
        return "requires_capture"
    if status == "pending":
        # An on-session page waits for the viewer; an off-session charge is being decided.
        return "processing" if _meta(model, MODE_KEY) == "off_session" else "requires_action"
    if status == "canceled":
        return "canceled" if payment_decline(_reason(model)) is None else "requires_payment_method"
    raise unexpected_response(f"payment with unknown status {status!r}")


def payment_from_model(model: Any) -> ProviderPayment:
    """Return a payment as the gateway's ProviderPayment."""
    reason = _reason(model)
    declined = str(model.status) == "canceled" and payment_decline(reason) is not None
    card = card_from_payment_method(model.payment_method)
    return ProviderPayment(
        id=str(model.id),
        status=provider_status(model),
        amount=minor_units(model.amount, "payment"),
        currency=currency_of(model.amount, "payment"),
        customer_id=_meta(model, CUSTOMER_KEY),
        payment_method_id=_saved_method_id(model),
        # The payment is its own charge at YooKassa.
        latest_charge_id=str(model.id) if str(model.status) in ("succeeded", "waiting_for_capture") else None,
        failure_code=("authentication_required" if reason == "3d_secure_failed" else reason)
        if declined
        else None,
        decline_code=reason if declined else None,
        failure_message=reason if declined else None,
        metadata=our_metadata(model),
        card=card,
        receipt_registration=str(model.receipt_registration or ""),
    )


def checkout_from_model(model: Any) -> CheckoutSession:
    """Return a payment opened with a confirmation page as the gateway's CheckoutSession.

    The payment is the page: open while pending, complete once paid (or, for a card-saving hold,
    once authorized with the card saved), expired once canceled, declined or left unpaid.
    """
    status = str(model.status)
    setup = is_setup(model)
    saved = _saved_method_id(model) is not None
    page: CheckoutStatus
    paid: CheckoutPaymentStatus = "unpaid"
    if status == "pending":
        page = "open"
    elif status == "succeeded" and not setup:
        page, paid = "complete", "paid"
    elif setup and saved and (status == "waiting_for_capture" or _reason(model) == "canceled_by_merchant"):
        # The card is saved; the hold is released by `cancel_payment`, never captured.
        page, paid = "complete", "no_payment_required"
    elif status == "waiting_for_capture":
        page = "complete"  # held, not yet taken: the domain captures or cancels it
    else:
        page = "expired"
    confirmation = model.confirmation
    url = getattr(confirmation, "confirmation_url", None) if confirmation is not None else None
    created = parse_time(model.created_at, "payment")
    expires = (
        parse_time(model.expires_at, "payment")
        if model.expires_at
        else datetime.fromtimestamp(created.timestamp() + PENDING_PAYMENT_LIFETIME_SECONDS, tz=UTC)
    )
    reached = status != "pending"
    return CheckoutSession(
        id=str(model.id),
        url=str(url) if url and page == "open" else None,
        status=page,
        payment_status=paid,
        payment_intent_id=str(model.id) if reached and not setup else None,
        setup_intent_id=str(model.id) if reached and setup else None,
        customer_id=_meta(model, CUSTOMER_KEY),
        client_reference_id=_meta(model, REFERENCE_KEY),
        metadata=our_metadata(model),
        amount_total=None if setup else minor_units(model.amount, "payment"),
        currency=currency_of(model.amount, "payment"),
        expires_at=expires,
    )


def setup_from_model(model: Any) -> PaymentMethodSetup:
    """Return a card-saving hold as the gateway's PaymentMethodSetup ("succeeded" once the card is saved)."""
    saved = _saved_method_id(model)
    status = str(model.status)
    if saved and status in ("waiting_for_capture", "succeeded", "canceled"):
        state = (
            "succeeded" if status != "canceled" or _reason(model) == "canceled_by_merchant" else "canceled"
        )
    elif status == "pending":
        state = "requires_action"
    else:
        state = "canceled"
    return PaymentMethodSetup(
        id=str(model.id),
        status=state,
        customer_id=_meta(model, CUSTOMER_KEY),
        payment_method_id=saved,
        metadata=our_metadata(model),
    )


_REFUND_STATES: dict[str, RefundState] = {
    "pending": "pending",
    "succeeded": "succeeded",
    "canceled": "failed",
}


def refund_from_model(model: Any) -> RefundInfo:
    """Return a refund as the gateway's RefundInfo (YooKassa's canceled refund is our failed one)."""
    status = str(model.status)
    if status not in _REFUND_STATES:
        raise unexpected_response(f"refund with unknown status {status!r}")
    details = model.cancellation_details
    return RefundInfo(
        id=str(model.id),
        status=_REFUND_STATES[status],
        amount=minor_units(model.amount, "refund"),
        currency=currency_of(model.amount, "refund"),
        payment_intent_id=str(model.payment_id) if model.payment_id else None,
        failure_reason=str(details.reason) if details is not None and details.reason else None,
        charge_id=str(model.payment_id) if model.payment_id else None,
        balance_transaction_id=None,
        created=parse_time(model.created_at, "refund") if model.created_at else None,
        metadata={k: str(v) for k, v in (model.metadata or {}).items()},
    )


def charge_from_model(model: Any) -> ChargeInfo:
    """Return a payment as a charge of the daily report (a card-saving hold is never captured)."""
    status = str(model.status)
    charge_status = {"succeeded": "succeeded", "pending": "pending"}.get(status, "failed")
    if status == "waiting_for_capture":
        charge_status = "pending"
    refunded = model.refunded_amount
    return ChargeInfo(
        id=str(model.id),
        status=charge_status,
        amount=minor_units(model.amount, "payment"),
        amount_refunded=minor_units(refunded, "payment") if refunded is not None else 0,
        currency=currency_of(model.amount, "payment"),
        captured=status == "succeeded",
        payment_intent_id=str(model.id),
        balance_transaction_id=None,
        created=parse_time(model.created_at, "payment"),
    )


def settlement_from_payment(model: Any) -> SettlementLine | None:
    """Return what a succeeded payment did to the balance: `income_amount` is what is left after the fee."""
    if str(model.status) != "succeeded":
        return None
    amount = minor_units(model.amount, "payment")
    income = minor_units(model.income_amount, "payment") if model.income_amount is not None else amount
    return SettlementLine(
        id=str(model.id),
        type="payment",
        amount=amount,
        fee=amount - income,
        net=income,
        currency=currency_of(model.amount, "payment"),
        source_id=str(model.id),
        exchange_rate=None,
        created=parse_time(model.captured_at or model.created_at, "payment"),
        kind="payment",
    )


def settlement_from_refund(model: Any) -> SettlementLine | None:
    """Return what a succeeded refund did to the balance (YooKassa keeps no fee back on refunds)."""
    if str(model.status) != "succeeded":
        return None
    amount = minor_units(model.amount, "refund")
    return SettlementLine(
        id=str(model.id),
        type="refund",
        amount=-amount,
        fee=0,
        net=-amount,
        currency=currency_of(model.amount, "refund"),
        source_id=str(model.id),
        exchange_rate=None,
        created=parse_time(model.created_at, "refund"),
        kind="refund",
    )


def unexpected_response(what: str) -> PermanentGatewayError:
    """Return the error for an answer the gateway cannot read."""
    return PermanentGatewayError(f"unexpected YooKassa answer: {what}", code="unexpected_response")
