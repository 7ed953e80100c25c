"""Translate what the Stripe SDK returns and raises into the gateway's plain values and errors.

Objects arrive here as plain JSON dicts (`StripeObject.to_dict()`), never as SDK types, so the
same code reads Stripe, the offline sandbox and localstripe, which sometimes expands a field
(an object) where Stripe sends an id (a string).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe

from payments.gateways.base import (
    CardInfo,
    ChargeInfo,
    CheckoutPaymentStatus,
    CheckoutSession,
    CheckoutStatus,
    GatewayEvent,
    PaymentMethodSetup,
    ProviderBalance,
    ProviderPayment,
    RefundInfo,
    RefundState,
    SettlementKind,
    SettlementLine,
)
from payments.gateways.errors import (
    AuthenticationRequired,
    CardDeclined,
    DeclineKind,
    DeclineReason,
    GatewayError,
    InvalidWebhookSignature,
    PermanentGatewayError,
    RateLimited,
    TemporaryGatewayError,
)

# The metadata key under which a Stripe customer carries our billing account reference.
ACCOUNT_REF_METADATA_KEY = "account_ref"

_L = TypeVar("_L", bound=str)

_CHECKOUT_STATUSES: tuple[CheckoutStatus, ...] = ("open", "complete", "expired")
_CHECKOUT_PAYMENT_STATUSES: tuple[CheckoutPaymentStatus, ...] = ("paid", "unpaid", "no_payment_required")


# --- errors -------------------------------------------------------------------------------


# Stripe's decline codes a retry cannot fix: the card is gone, blocked or refused for good.
# Anything else (insufficient funds, a generic decline, the issuer unavailable) is soft.
HARD_DECLINE_CODES = frozenset(
    {
        "card_not_supported",
        "currency_not_supported",
        "do_not_try_again",
        "expired_card",
        "fraudulent",
        "incorrect_number",
        "invalid_account",
        "lost_card",
        "merchant_blacklist",
        "no_saved_card",
        "pickup_card",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "stolen_card",
        "stop_payment_order",
        "transaction_not_allowed",
    }
)

# Stripe's errors when the saved payment method itself is gone or cannot be charged.
UNUSABLE_PAYMENT_METHOD_CODES = frozenset(
    {"resource_missing", "payment_method_unactivated", "payment_method_not_available"}
)


# Stripe's decline codes the viewer is told about in words of their own.
DECLINE_REASONS: dict[str, DeclineReason] = {
    "insufficient_funds": "insufficient_funds",
    "expired_card": "card_expired",
    "lost_card": "card_blocked",
    "stolen_card": "card_blocked",
    "pickup_card": "card_blocked",
    "restricted_card": "card_blocked",
}


def decline_reason(code: str | None) -> DeclineReason:
    """Return what a Stripe decline (its decline code, else its error code) means for the viewer."""
    return DECLINE_REASONS.get(code or "", "other")


def decline_kind(code: str | None) -> DeclineKind:
    """Return whether a Stripe decline (its decline code, else its error code) is hard or soft."""
    return "hard" if code in HARD_DECLINE_CODES else "soft"


def gateway_error_from_stripe(exc: stripe.StripeError) -> GatewayError:
    """Return the gateway error that stands for a Stripe SDK exception.

    This is the one place where SDK exceptions become ours; docs/gateway.md has the table.
    """
    body = _error_body(exc)
    message = exc.user_message or type(exc).__name__
    # Some SDK exceptions (RateLimitError, AuthenticationError) drop the body's code.
    code = exc.code or _str_or_none(body.get("code"))
    status = exc.http_status
    request_id = exc.request_id
    common: dict[str, Any] = {"http_status": status, "request_id": request_id}

    if isinstance(exc, stripe.SignatureVerificationError):
        return InvalidWebhookSignature(message, code="invalid_signature")

    if isinstance(exc, stripe.CardError):
        decline_code = _str_or_none(body.get("decline_code"))
        payment_intent_id = read_id(body.get("payment_intent"))
        # Stripe reports an off-session charge that needs 3-D Secure as a card error with
        # code (and decline_code) "authentication_required"; the domain must treat it apart
        # from a plain decline, since the customer can still pay by authenticating.
        if "authentication_required" in (code, decline_code):
            return AuthenticationRequired(message, payment_intent_id=payment_intent_id, **common)
        return CardDeclined(
            message,
            decline_code=decline_code,
            payment_intent_id=payment_intent_id,
            code=code or "card_declined",
            kind=decline_kind(decline_code or code),
            **common,
        )

    error: GatewayError
    if isinstance(exc, stripe.RateLimitError):
        # Stripe sends lock timeouts (another request holds the object) as 429 too; those are
        # about contention on one object, not our request rate.
        if code == "lock_timeout":
            error = TemporaryGatewayError(message, code=code, **common)
        else:
            error = RateLimited(message, code=code or "rate_limit", **common)
    elif isinstance(exc, stripe.APIConnectionError):
        # Connection refused, reset, DNS, read timeout: the request may or may not have been
        # applied, which is exactly what the idempotency key makes safe to retry.
        error = TemporaryGatewayError(message, code=code or "api_connection_error", **common)
    elif isinstance(exc, stripe.AuthenticationError):
        error = PermanentGatewayError(message, code=code or "authentication_error", **common)
    elif isinstance(exc, stripe.PermissionError):
        error = PermanentGatewayError(message, code=code or "permission_error", **common)
    elif isinstance(exc, stripe.IdempotencyError):
        # The same key was sent with different parameters: a bug in how we derive keys.
        error = PermanentGatewayError(message, code=code or "idempotency_error", **common)
    elif isinstance(exc, stripe.InvalidRequestError):
        error = PermanentGatewayError(message, code=code or "invalid_request_error", **common)
    elif isinstance(exc, stripe.APIError) and (status is None or status >= 500 or status == 409):
        # 409 is Stripe's "another request with this idempotency key is still in progress".
        error = TemporaryGatewayError(message, code=code or "api_error", **common)
    else:
        # Anything else, e.g. a non-JSON 404 from a server that lacks the endpoint.
        error = PermanentGatewayError(message, code=code or "api_error", **common)

    # Stripe may say outright whether a retry can help (e.g. "false" when the idempotency
    # layer would only replay the stored 500); its word beats our guess.
    should_retry = _header(exc.headers, "stripe-should-retry")
    if should_retry == "true":
        error.retryable = True
    elif should_retry == "false":
        error.retryable = False
    return error


def _error_body(exc: stripe.StripeError) -> Mapping[str, Any]:
    body = exc.json_body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return body["error"]
    return {}


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    # The SDK hands back requests' case-insensitive dict, other HTTP clients a plain one.
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value).lower()
    return None


# --- objects ------------------------------------------------------------------------------


def checkout_session_from_stripe(data: Mapping[str, Any]) -> CheckoutSession:
    """Return our view of a Stripe Checkout Session."""
    return CheckoutSession(
        id=_required_str(data, "id"),
        url=_str_or_none(data.get("url")),
        status=_one_of(data.get("status"), _CHECKOUT_STATUSES, "checkout status"),
        payment_status=_one_of(
            data.get("payment_status"), _CHECKOUT_PAYMENT_STATUSES, "checkout payment status"
        ),
        payment_intent_id=read_id(data.get("payment_intent")),
        setup_intent_id=read_id(data.get("setup_intent")),
        customer_id=read_id(data.get("customer")),
        client_reference_id=_str_or_none(data.get("client_reference_id")),
        metadata=read_metadata(data.get("metadata")),
        amount_total=_int_or_none(data.get("amount_total")),
        currency=_currency_or_none(data.get("currency")),
        expires_at=_timestamp(data.get("expires_at"), "expires_at"),
    )


def card_from_stripe(data: Mapping[str, Any]) -> CardInfo | None:
    """Return the card details of a PaymentMethod, or None when it is not a card."""
    card = data.get("card")
    if data.get("type") != "card" or not isinstance(card, Mapping):
        return None
    return CardInfo(
        payment_method_id=_required_str(data, "id"),
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or ""),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
        fingerprint=str(card.get("fingerprint") or ""),
    )


def payment_intent_from_stripe(data: Mapping[str, Any]) -> ProviderPayment:
    """Return our view of a PaymentIntent; `payment_method` may be expanded or an id."""
    payment_method = data.get("payment_method")
    card = card_from_stripe(payment_method) if isinstance(payment_method, Mapping) else None
    error = data.get("last_payment_error")
    error = error if isinstance(error, Mapping) else {}
    return ProviderPayment(
        id=_required_str(data, "id"),
        status=_required_str(data, "status"),
        amount=int(data.get("amount") or 0),
        currency=_currency(data.get("currency")),
        customer_id=read_id(data.get("customer")),
        payment_method_id=read_id(payment_method),
        latest_charge_id=read_id(data.get("latest_charge")),
        failure_code=_str_or_none(error.get("code")),
        decline_code=_str_or_none(error.get("decline_code")),
        failure_message=_str_or_none(error.get("message")),
        metadata=read_metadata(data.get("metadata")),
        card=card,
    )


def setup_intent_from_stripe(data: Mapping[str, Any]) -> PaymentMethodSetup:
    """Return our view of a SetupIntent."""
    return PaymentMethodSetup(
        id=_required_str(data, "id"),
        status=_required_str(data, "status"),
        customer_id=read_id(data.get("customer")),
        payment_method_id=read_id(data.get("payment_method")),
        metadata=read_metadata(data.get("metadata")),
    )


# Stripe's refund statuses in our words; "requires_action" (the customer must act before the
# money can go back) is still on its way.
REFUND_STATES: dict[str, RefundState] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}

# Our refund reasons Stripe has a word for; the others are sent without one.
STRIPE_REFUND_REASONS: dict[str, str] = {
    "requested_by_customer": "requested_by_customer",
    "duplicate": "duplicate",
    "fraudulent": "fraudulent",
}


def refund_from_stripe(data: Mapping[str, Any]) -> RefundInfo:
    """Return our view of a Refund."""
    status = _required_str(data, "status")
    if status not in REFUND_STATES:
        raise unexpected_response(f"refund status {status!r}")
    return RefundInfo(
        id=_required_str(data, "id"),
        status=REFUND_STATES[status],
        amount=int(data.get("amount") or 0),
        currency=_currency(data.get("currency")),
        payment_intent_id=read_id(data.get("payment_intent")),
        failure_reason=_str_or_none(data.get("failure_reason")),
        charge_id=read_id(data.get("charge")),
        balance_transaction_id=read_id(data.get("balance_transaction")),
        created=_timestamp(data["created"], "created") if "created" in data else None,
        metadata=read_metadata(data.get("metadata")),
    )


def charge_from_stripe(data: Mapping[str, Any]) -> ChargeInfo:
    """Return our view of a Charge."""
    return ChargeInfo(
        id=_required_str(data, "id"),
        status=_required_str(data, "status"),
        amount=int(data.get("amount") or 0),
        amount_refunded=int(data.get("amount_refunded") or 0),
        currency=_currency(data.get("currency")),
        captured=bool(data.get("captured")),
        payment_intent_id=read_id(data.get("payment_intent")),
        balance_transaction_id=read_id(data.get("balance_transaction")),
        created=_timestamp(data.get("created"), "created"),
    )


# Stripe's balance transaction types of charges and of refunds (the older and newer names), and
# of payouts: the payout takes money out of the balance, a failed or canceled one puts it back.
SETTLEMENT_KINDS: dict[str, SettlementKind] = {
    "charge": "payment",
    "payment": "payment",
    "refund": "refund",
    "payment_refund": "refund",
    "payout": "payout",
    "payout_cancel": "payout",
    "payout_failure": "payout",
}


def balance_transaction_from_stripe(data: Mapping[str, Any]) -> SettlementLine:
    """Return our view of a BalanceTransaction."""
    rate = data.get("exchange_rate")
    type_ = _required_str(data, "type")
    return SettlementLine(
        id=_required_str(data, "id"),
        type=type_,
        kind=SETTLEMENT_KINDS.get(type_, "other"),
        amount=int(data.get("amount") or 0),
        fee=int(data.get("fee") or 0),
        net=int(data.get("net") or 0),
        currency=_currency(data.get("currency")),
        source_id=read_id(data.get("source")),
        exchange_rate=float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) else None,
        created=_timestamp(data.get("created"), "created"),
    )


def balance_from_stripe(data: Mapping[str, Any]) -> list[ProviderBalance]:
    """Return our view of the Balance: per currency, what is available and what is pending.

    Each of Stripe's lists has an entry per currency whose `amount` already adds up its source
    types (card, bank account, ...); entries of one currency are added up all the same, should a
    list ever carry two. A currency in one list only is zero in the other. `connect_reserved`,
    `instant_available` and `issuing` are left out: a Connect platform's reserve, an instant
    payout's share of `available`, and money set aside for Issuing are not what clearing holds.
    """
    available = _amounts_by_currency(data.get("available"), "available")
    pending = _amounts_by_currency(data.get("pending"), "pending")
    try:
        return [
            ProviderBalance(
                currency=currency, available=available.get(currency, 0), pending=pending.get(currency, 0)
            )
            for currency in sorted(available.keys() | pending.keys())
        ]
    except ValueError as exc:
        # A currency that is no ISO code even upper-cased: not one Stripe could mean.
        raise unexpected_response(f"balance currency: {exc}") from exc


def _amounts_by_currency(value: Any, what: str) -> dict[str, int]:
    # A list of {amount, currency, source_types}; anything else (localstripe answers a single
    # object with a made-up amount) is not Stripe's balance and must not be reported as one.
    if not isinstance(value, list):
        raise unexpected_response(f"balance {what} is not a list")
    totals: dict[str, int] = {}
    for entry in value:
        amount = _int_or_none(entry.get("amount")) if isinstance(entry, Mapping) else None
        if amount is None:
            raise unexpected_response(f"balance {what} without an amount")
        currency = _currency(entry.get("currency"))
        totals[currency] = totals.get(currency, 0) + amount
    return totals


def event_from_stripe(data: Mapping[str, Any]) -> GatewayEvent:
    """Return our view of an Event, carrying `data.object` as a plain JSON dict."""
    payload = data.get("data")
    obj = payload.get("object") if isinstance(payload, Mapping) else None
    if not isinstance(obj, Mapping):
        raise PermanentGatewayError("event has no data.object", code="unexpected_response")
    return GatewayEvent(
        id=_required_str(data, "id"),
        type=_required_str(data, "type"),
        created=_timestamp(data.get("created"), "created"),
        object_id=_str_or_none(obj.get("id")),
        object=dict(obj),
    )


# --- small readers ------------------------------------------------------------------------


def unexpected_response(what: str) -> PermanentGatewayError:
    # A response we cannot read is a contract break with the provider, not a reason to retry.
    return PermanentGatewayError(f"unexpected provider response: {what}", code="unexpected_response")


def read_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        return _str_or_none(value.get("id"))
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _required_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise unexpected_response(f"missing {key}")
    return value


def _currency(value: Any) -> str:
    currency = _currency_or_none(value)
    if currency is None:
        raise unexpected_response("missing currency")
    return currency


def _currency_or_none(value: Any) -> str | None:
    # Stripe speaks lower case; our rows and dataclasses hold upper case.
    return value.upper() if isinstance(value, str) and value else None


def read_metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): str(item) for key, item in value.items()}


def _timestamp(value: Any, what: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise unexpected_response(f"missing {what}")
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        # NaN, infinity, or a year outside 1..9999 (`1e30`): no time Stripe could mean.
        raise unexpected_response(f"{what} out of range") from exc


def _one_of(value: Any, allowed: tuple[_L, ...], what: str) -> _L:
    for candidate in allowed:
        if value == candidate:
            return candidate
    raise unexpected_response(f"{what} {value!r}")
