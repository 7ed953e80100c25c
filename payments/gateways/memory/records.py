"""What the in-memory provider holds, and how it shows it.

The objects it keeps (cards, intents, setup intents, checkout sessions, remembered keys, the
whole `MemoryState`), how they read through the gateway interface and as event JSON (shaped as
Stripe's, as the sandbox sends it), and the errors it answers with.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from payments.gateways.base import (
    CardInfo,
    ChargeInfo,
    CheckoutMode,
    CheckoutPaymentStatus,
    CheckoutSession,
    CheckoutStatus,
    CreatedRange,
    GatewayEvent,
    RefundInfo,
    SettlementLine,
)
from payments.gateways.errors import GatewayError, PermanentGatewayError

# The sandbox's limits on a page's life (payments/sandbox/checkout.py), with its minute of slack.
_MIN_LIFETIME = timedelta(minutes=30)
_MAX_LIFETIME = timedelta(hours=24)
_CLOCK_SLACK = timedelta(minutes=1)
CHECKOUT_URL = "https://memory-provider.invalid/checkout/"


@dataclass
class _Card:
    id: str
    test_card: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    customer_id: str | None = None

    def info(self) -> CardInfo:
        return CardInfo(
            payment_method_id=self.id,
            brand=self.brand,
            last4=self.last4,
            exp_month=self.exp_month,
            exp_year=self.exp_year,
            fingerprint=self.fingerprint,
        )


@dataclass
class _Intent:
    id: str
    amount: int
    currency: str
    customer_id: str | None
    metadata: dict[str, str]
    description: str
    save_card: bool
    created: datetime
    status: str = "requires_payment_method"
    payment_method_id: str | None = None
    latest_charge_id: str | None = None
    # (code, decline_code, message) of the last failed attempt.
    error: tuple[str, str | None, str] | None = None


@dataclass
class _SetupIntent:
    id: str
    customer_id: str | None
    metadata: dict[str, str]
    status: str = "requires_payment_method"
    payment_method_id: str | None = None


@dataclass
class _Session:
    id: str
    mode: CheckoutMode
    customer_id: str
    amount_total: int | None
    currency: str
    product_name: str | None
    client_reference_id: str
    metadata: dict[str, str]
    save_card: bool
    success_url: str
    expires_at: datetime
    status: CheckoutStatus = "open"
    payment_status: CheckoutPaymentStatus = "unpaid"
    payment_intent_id: str | None = None
    setup_intent_id: str | None = None


@dataclass(frozen=True)
class PayResult:
    """What the viewer sees after submitting a card on a page or finishing 3-D Secure.

    `outcome` is the sandbox control API's word: succeeded, declined, requires_action,
    invalid (the card form refused what was typed) or unavailable (the page is closed).
    """

    outcome: str
    message: str | None = None
    payment_intent_id: str | None = None


@dataclass
class _Remembered:
    request: Any
    result: Any = None
    error: GatewayError | None = None


@dataclass
class MemoryState:
    """Everything the provider knows; `MemoryGateway.reset()` starts a new one."""

    customers: dict[str, dict[str, str]] = field(default_factory=dict)
    sessions: dict[str, _Session] = field(default_factory=dict)
    intents: dict[str, _Intent] = field(default_factory=dict)
    setup_intents: dict[str, _SetupIntent] = field(default_factory=dict)
    cards: dict[str, _Card] = field(default_factory=dict)
    charges: dict[str, ChargeInfo] = field(default_factory=dict)
    refunds: dict[str, RefundInfo] = field(default_factory=dict)
    balance_transactions: dict[str, SettlementLine] = field(default_factory=dict)
    events: list[GatewayEvent] = field(default_factory=list)
    keys: dict[str, _Remembered] = field(default_factory=dict)
    # Every gateway call, in order: (operation, idempotency key or None).
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _session_info(session: _Session) -> CheckoutSession:
    return CheckoutSession(
        id=session.id,
        url=CHECKOUT_URL + session.id if session.status == "open" else None,
        status=session.status,
        payment_status=session.payment_status,
        payment_intent_id=session.payment_intent_id,
        setup_intent_id=session.setup_intent_id,
        customer_id=session.customer_id,
        client_reference_id=session.client_reference_id,
        metadata=dict(session.metadata),
        amount_total=session.amount_total,
        currency=session.currency,
        expires_at=session.expires_at,
    )


def _session_json(session: _Session) -> dict[str, Any]:
    info = _session_info(session)
    return {
        "id": info.id,
        "object": "checkout.session",
        "mode": session.mode,
        "status": info.status,
        "payment_status": info.payment_status,
        "payment_intent": info.payment_intent_id,
        "setup_intent": info.setup_intent_id,
        "customer": info.customer_id,
        "client_reference_id": info.client_reference_id,
        "metadata": dict(info.metadata),
        "amount_total": info.amount_total,
        "currency": session.currency.lower(),
        "expires_at": int(info.expires_at.timestamp()),
    }


def _intent_json(intent: _Intent) -> dict[str, Any]:
    code, decline_code, message = intent.error or (None, None, None)
    return {
        "id": intent.id,
        "object": "payment_intent",
        "status": intent.status,
        "amount": intent.amount,
        "currency": intent.currency.lower(),
        "customer": intent.customer_id,
        "payment_method": intent.payment_method_id,
        "latest_charge": intent.latest_charge_id,
        "metadata": dict(intent.metadata),
        "last_payment_error": (
            {"code": code, "decline_code": decline_code, "message": message} if code is not None else None
        ),
        "created": int(intent.created.timestamp()),
    }


def _setup_json(setup: _SetupIntent) -> dict[str, Any]:
    return {
        "id": setup.id,
        "object": "setup_intent",
        "status": setup.status,
        "customer": setup.customer_id,
        "payment_method": setup.payment_method_id,
        "metadata": dict(setup.metadata),
    }


def _charge_json(charge: ChargeInfo) -> dict[str, Any]:
    return {
        "id": charge.id,
        "object": "charge",
        "status": charge.status,
        "amount": charge.amount,
        "amount_refunded": charge.amount_refunded,
        "refunded": charge.amount_refunded >= charge.amount,
        "currency": charge.currency.lower(),
        "payment_intent": charge.payment_intent_id,
        "balance_transaction": charge.balance_transaction_id,
        "created": int(charge.created.timestamp()),
    }


def _refund_json(refund: RefundInfo, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": refund.id,
        "object": "refund",
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.currency.lower(),
        "payment_intent": refund.payment_intent_id,
        "charge": refund.charge_id,
        "balance_transaction": refund.balance_transaction_id,
        "metadata": dict(metadata),
        "created": int(refund.created.timestamp()) if refund.created else None,
    }


def _newest_first_in(items: list[Any], created: CreatedRange) -> list[Any]:
    # Whole seconds, as the provider's `created` has them: [floor(start), floor(end)).
    start, end = created.start.replace(microsecond=0), created.end.replace(microsecond=0)
    return [item for item in reversed(items) if start <= item.created < end]


def _unavailable_message(session: _Session) -> str:
    if session.status == "complete":
        return "This Checkout Session is already complete."
    return "This Checkout Session has expired."


def _invalid(message: str, *, code: str = "invalid_request_error") -> PermanentGatewayError:
    return PermanentGatewayError(message, code=code, http_status=400)


def _missing(kind: str, object_id: str) -> PermanentGatewayError:
    return PermanentGatewayError(f"No such {kind}: '{object_id}'", code="resource_missing", http_status=404)
