"""The payment gateway interface, the plain values it takes and returns, and the errors it raises.

Nothing here knows about Stripe's SDK or about Django models: the domain codes against these
types only, so a provider (Stripe, the offline sandbox, a test fake) can be swapped underneath.

Conventions at this boundary:
- money is an integer amount in minor units plus an ISO 4217 code in upper case ("EUR");
- times are timezone-aware datetimes in UTC;
- every call that changes something at the provider carries the caller's idempotency key,
  derived from what is being paid (see docs/gateway.md), never a random one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from payments.gateways.errors import PaymentDecline

CheckoutMode = Literal["payment", "setup"]
CheckoutStatus = Literal["open", "complete", "expired"]
CheckoutPaymentStatus = Literal["paid", "unpaid", "no_payment_required"]

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def _require_currency(currency: str) -> None:
    # Upper case on our side, lower case on Stripe's: refusing anything else here stops a
    # lower-case code from leaking into our rows through a careless round trip.
    if not _CURRENCY_RE.match(currency):
        raise ValueError(f"currency must be an upper-case ISO 4217 code, got {currency!r}")


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _require_key(key: str) -> None:
    # Stripe keeps keys of up to 255 characters; an empty key would make the SDK invent a
    # random one, which is exactly what a retried payment must never get.
    if not key or len(key) > 255:
        raise ValueError("idempotency_key must be 1..255 characters")


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerRequest:
    """Create the provider-side customer of one billing account."""

    account_ref: str
    email: str
    idempotency_key: str

    def __post_init__(self) -> None:
        _require_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """Open a hosted checkout page.

    In "payment" mode `amount` and `product_name` are required: they are the price we locked,
    sent as one line item. In "setup" mode they are not used (nothing is charged), while
    `currency` still is, because the provider picks the payment methods it offers by currency.
    """

    mode: CheckoutMode
    customer_id: str
    amount: int | None
    currency: str
    product_name: str | None
    client_reference_id: str
    metadata: dict[str, str]
    save_payment_method: bool
    success_url: str
    cancel_url: str
    expires_at: datetime | None
    locale: str | None
    idempotency_key: str
    # For providers that register a fiscal receipt with each payment (YooKassa, 54-FZ): where
    # the receipt is sent. Empty for providers that send none.
    receipt_email: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("payment", "setup"):
            raise ValueError(f"unknown checkout mode {self.mode!r}")
        if self.mode == "payment":
            if self.amount is None or self.amount <= 0:
                raise ValueError("a payment checkout needs a positive amount")
            if not self.product_name:
                raise ValueError("a payment checkout needs a product name")
        _require_currency(self.currency)
        _require_aware(self.expires_at, "expires_at")
        _require_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class OffSessionCharge:
    """Charge a saved payment method while the customer is away (renewals, dunning retries)."""

    customer_id: str
    payment_method_id: str
    amount: int
    currency: str
    description: str
    metadata: dict[str, str]
    idempotency_key: str
    # The fiscal receipt's recipient (YooKassa, 54-FZ); its item is named by `description`.
    receipt_email: str = ""

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError("an off-session charge needs a positive amount")
        _require_currency(self.currency)
        _require_key(self.idempotency_key)


# Why money goes back, in our words; each provider passes on what it has a word for.
RefundReasonCode = Literal[
    "requested_by_customer", "duplicate", "fraudulent", "service_problem", "goodwill", "other"
]


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """Refund part or all of a payment; `amount=None` refunds whatever is left."""

    payment_intent_id: str
    amount: int | None
    reason: RefundReasonCode | None
    metadata: dict[str, str]
    idempotency_key: str
    # The refund's fiscal receipt (YooKassa, 54-FZ): its recipient and its one item's name.
    receipt_email: str = ""
    receipt_item_name: str = ""

    def __post_init__(self) -> None:
        if self.amount is not None and self.amount <= 0:
            raise ValueError("a refund amount must be positive")
        _require_key(self.idempotency_key)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Ask for a page of the provider's events, for reconciliation when webhooks were missed.

    `created_after` is strict: events created in that very second or earlier are left out.
    """

    created_after: datetime | None = None
    starting_after: str | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        _require_aware(self.created_after, "created_after")


@dataclass(frozen=True, slots=True)
class CreatedRange:
    """Ask for every object the provider created in [start, end): a day of charges, say.

    Both ends are whole seconds at the provider (Stripe's `created`), so a range built from
    midnights covers each second exactly once across consecutive days.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError("end must come after start")


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardInfo:
    """What we may show of a saved card: never its number."""

    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    # The provider's stable id of the card number (the same card saved twice has one), so a
    # trial is given once per card, not only once per account.
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A hosted checkout page and how far the customer got with it."""

    id: str
    url: str | None
    status: CheckoutStatus
    payment_status: CheckoutPaymentStatus
    payment_intent_id: str | None
    setup_intent_id: str | None
    customer_id: str | None
    client_reference_id: str | None
    metadata: dict[str, str]
    amount_total: int | None
    currency: str | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """One attempt to collect money and its latest outcome.

    `status` is the provider's own word ("succeeded", "processing", "requires_payment_method",
    "requires_action", "canceled", ...); the failure fields come from the last failed attempt.
    """

    id: str
    status: str
    amount: int
    currency: str
    customer_id: str | None
    payment_method_id: str | None
    latest_charge_id: str | None
    failure_code: str | None
    decline_code: str | None
    failure_message: str | None
    metadata: dict[str, str]
    card: CardInfo | None
    # The 54-FZ receipt the provider registers with the payment (YooKassa's
    # `receipt_registration`: "pending", "succeeded", "canceled"); empty when it registers none.
    receipt_registration: str = ""


@dataclass(frozen=True, slots=True)
class PaymentMethodSetup:
    """A payment method being saved without a charge (checkout in "setup" mode)."""

    id: str
    status: str
    customer_id: str | None
    payment_method_id: str | None
    metadata: dict[str, str]


# Where a refund stands, in our words: the provider package maps its own statuses onto these
# (a refund waiting for the customer's action at the provider is still "pending").
RefundState = Literal["pending", "succeeded", "failed", "canceled"]


@dataclass(frozen=True, slots=True)
class RefundInfo:
    """A refund and where it stands."""

    id: str
    status: RefundState
    amount: int
    currency: str
    payment_intent_id: str | None
    failure_reason: str | None
    # Filled when the provider's answer has them (always for listed refunds).
    charge_id: str | None = None
    balance_transaction_id: str | None = None
    created: datetime | None = None
    # Ours, as we sent it (`refund_id`): a refund's event may arrive before the answer to our call.
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChargeInfo:
    """A charge: money taken (status "succeeded") or an attempt that failed ("failed", "pending").

    `amount_refunded` is what has been refunded of it so far, whenever that happened.
    """

    id: str
    status: str
    amount: int
    amount_refunded: int
    currency: str
    captured: bool
    payment_intent_id: str | None
    balance_transaction_id: str | None
    created: datetime


# What an entry of the provider's ledger records, in our words: money taken for a payment,
# money given back for a refund, money paid out to the bank (or back from a failed payout), or
# anything else (adjustments, fees of their own).
SettlementKind = Literal["payment", "refund", "payout", "other"]


@dataclass(frozen=True, slots=True)
class SettlementLine:
    """One entry of the provider's ledger: what a charge or refund did to the balance.

    `amount`, `fee` and `net` are in the balance's (settlement) currency, which may differ
    from the charge's: then `exchange_rate` is set. A refund's entry has a negative amount.
    `type` is the provider's own name for the entry; `kind` is what it means to us.
    """

    id: str
    type: str
    amount: int
    fee: int
    net: int
    currency: str
    source_id: str | None
    exchange_rate: float | None
    created: datetime
    kind: SettlementKind = "other"


@dataclass(frozen=True, slots=True)
class ProviderBalance:
    """What a provider holds for us in one currency now, as it reports it.

    `available` can be paid out to the bank; `pending` is money taken that the provider has not
    released yet (Stripe holds card payments for a few days). Either may be negative (refunds
    or fees taken from a balance that had less). Both are in the balance's (settlement) currency.
    """

    currency: str
    available: int
    pending: int

    def __post_init__(self) -> None:
        _require_currency(self.currency)

    @property
    def total(self) -> int:
        """Return all the provider holds for us in the currency: what our clearing account stands for."""
        return self.available + self.pending


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """One provider event as it arrived; `object` is the plain JSON of the object it is about.

    Only the provider's package reads `type` and `object`: the domain acts on the `EventFact`
    that `PaymentGateway.event_fact()` makes of it.
    """

    id: str
    type: str
    created: datetime
    object_id: str | None
    object: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page of events in the provider's order (Stripe: newest first)."""

    events: list[GatewayEvent] = field(default_factory=list)
    has_more: bool = False


# --- provider events, as facts ------------------------------------------------------------
# What a provider's event tells us, whatever the provider. Each is a hint to act on: the
# handlers read the object again from the provider (or only move amounts forward), because
# events arrive late, twice and out of order.


@dataclass(frozen=True, slots=True)
class CheckoutChanged:
    """A hosted checkout page was completed, paid late, failed or expired."""

    checkout_ref: str


@dataclass(frozen=True, slots=True)
class PaymentChanged:
    """A payment succeeded or failed; `decline` says how a failure may be retried.

    `our_payment_id` and `our_checkout_id` are the ids we gave the provider with the payment,
    when it carries them back.
    """

    payment_ref: str
    succeeded: bool
    decline: PaymentDecline | None = None
    our_payment_id: str | None = None
    our_checkout_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRefundsChanged:
    """A payment's refunds moved: what has been refunded of it in all, and each refund listed."""

    payment_ref: str | None
    charge_ref: str | None
    refunded_total: int
    refunds: tuple[RefundInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class RefundChanged:
    """One refund succeeded, failed or was canceled (or is still pending)."""

    refund: RefundInfo


@dataclass(frozen=True, slots=True)
class PaymentMethodSaved:
    """A payment method was saved without a charge (a trial's checkout page in setup mode)."""

    setup_ref: str
    our_checkout_id: str | None = None


EventFact = CheckoutChanged | PaymentChanged | PaymentRefundsChanged | RefundChanged | PaymentMethodSaved
