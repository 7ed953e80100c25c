"""An in-memory payment gateway for unit tests of domain rules (promo codes, periods, refunds).

It keeps customers, checkout sessions, intents, cards, charges, refunds, ledger entries and
events in plain dicts of this process: no thread, no socket, no randomness (ids count up),
so a test that uses it is fast and runs the same every time. Where it has to decide, it
decides as the offline sandbox (`payments.sandbox`) does: the same test cards
(`payments.sandbox.cards`), the same idempotency (a key replays its first success or
decline; a key reused with other parameters is refused), the same refund and expiry rules.

The gateway contract itself (the SDK, errors on the wire, webhooks, retries) is proved against
the HTTP sandbox and localstripe; this fake is for what the domain decides with the answers.
Selected with `PAYMENT_GATEWAY = "memory"`; never in production (see `get_gateway()`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from payments.gateways.base import (
    AuthenticationRequired,
    CardDeclined,
    CardInfo,
    ChargeInfo,
    CheckoutMode,
    CheckoutPaymentStatus,
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    CreatedRange,
    CustomerRequest,
    EventPage,
    EventQuery,
    GatewayError,
    GatewayEvent,
    InvalidWebhookSignature,
    OffSessionCharge,
    PaymentMethodSetup,
    PermanentGatewayError,
    ProviderPayment,
    RefundInfo,
    RefundRequest,
    SettlementLine,
)

# The fake answers with the test cards and codes of Stripe's sandbox, so it classifies them as Stripe does.
from payments.gateways.stripe_mapping import SETTLEMENT_KINDS, decline_kind
from payments.sandbox import cards
from payments.sandbox.objects import processing_fee

# The sandbox's limits on a page's life (payments/sandbox/checkout.py), with its minute of slack.
_MIN_LIFETIME = timedelta(minutes=30)
_MAX_LIFETIME = timedelta(hours=24)
_CLOCK_SLACK = timedelta(minutes=1)
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
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


def _real_now() -> datetime:
    return datetime.now(UTC)


class MemoryGateway:
    """The `PaymentGateway` interface over dicts, plus the viewer's side of a checkout page.

    `now` gives the provider's clock for `created` times (the billing clock, as the sandbox
    follows it); `wall_now` the real time a page's life is measured on, as the sandbox and the
    billing service measure it (a viewer needs real minutes to pay).
    """

    def __init__(
        self, *, now: Callable[[], datetime] = _real_now, wall_now: Callable[[], datetime] = _real_now
    ) -> None:
        self._now = now
        self._wall_now = wall_now
        self.state = MemoryState()

    def reset(self) -> None:
        """Forget every object, key, event and call."""
        self.state = MemoryState()

    # --- the gateway interface ------------------------------------------------------------

    def create_customer(self, request: CustomerRequest) -> str:
        """Create the customer of a billing account and return its id."""

        def create() -> str:
            customer_id = self._new_id("cus")
            self.state.customers[customer_id] = {"email": request.email, "account_ref": request.account_ref}
            self._record(
                "customer.created", {"id": customer_id, "object": "customer", "email": request.email}
            )
            return customer_id

        result: str = self._idempotent("create_customer", request.idempotency_key, request, create)
        return result

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a checkout page for a locked price ("payment") or to save a card ("setup")."""

        def create() -> CheckoutSession:
            if request.customer_id not in self.state.customers:
                raise _missing("customer", request.customer_id)
            wall = self._wall_now()
            expires_at = request.expires_at or wall + _MAX_LIFETIME
            if not wall + _MIN_LIFETIME - _CLOCK_SLACK <= expires_at <= wall + _MAX_LIFETIME + _CLOCK_SLACK:
                raise _invalid(
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                    "Checkout Session creation."
                )
            session = _Session(
                id=self._new_id("cs_test"),
                mode=request.mode,
                customer_id=request.customer_id,
                amount_total=request.amount if request.mode == "payment" else None,
                currency=request.currency,
                product_name=request.product_name if request.mode == "payment" else None,
                client_reference_id=request.client_reference_id,
                metadata=dict(request.metadata),
                save_card=request.save_payment_method,
                success_url=request.success_url,
                expires_at=expires_at.replace(microsecond=0),
            )
            self.state.sessions[session.id] = session
            return self._session_info(session)

        result: CheckoutSession = self._idempotent(
            "create_checkout_session", request.idempotency_key, request, create
        )
        return result

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """Return a session as the provider sees it now, expiring it first if its time is up."""
        self._log("retrieve_checkout_session")
        return self._session_info(self._live_session(session_id))

    def expire_checkout_session(self, session_id: str, idempotency_key: str) -> CheckoutSession:
        """Expire an open session so that it can no longer be paid."""

        def expire() -> CheckoutSession:
            session = self._live_session(session_id)
            if session.status != "open":
                raise _invalid(
                    'Only Checkout Sessions with a status in ["open"] can be expired. '
                    f"This Checkout Session has a status of {session.status}."
                )
            self._expire(session)
            return self._session_info(session)

        result: CheckoutSession = self._idempotent(
            "expire_checkout_session", idempotency_key, ("expire", session_id), expire
        )
        return result

    def retrieve_payment(self, payment_intent_id: str) -> ProviderPayment:
        """Return a payment attempt with the card it used."""
        self._log("retrieve_payment")
        intent = self.state.intents.get(payment_intent_id)
        if intent is None:
            raise _missing("payment_intent", payment_intent_id)
        return self._intent_info(intent)

    def retrieve_payment_method_setup(self, setup_intent_id: str) -> PaymentMethodSetup:
        """Return a setup intent, to learn which card a setup checkout saved."""
        self._log("retrieve_payment_method_setup")
        intent = self.state.setup_intents.get(setup_intent_id)
        if intent is None:
            raise _missing("setup_intent", setup_intent_id)
        return PaymentMethodSetup(
            id=intent.id,
            status=intent.status,
            customer_id=intent.customer_id,
            payment_method_id=intent.payment_method_id,
            metadata=dict(intent.metadata),
        )

    def retrieve_payment_method(self, payment_method_id: str) -> CardInfo:
        """Return the displayable details of a saved card."""
        self._log("retrieve_payment_method")
        card = self.state.cards.get(payment_method_id)
        if card is None:
            raise _missing("payment_method", payment_method_id)
        return card.info()

    def charge_off_session(self, charge: OffSessionCharge) -> ProviderPayment:
        """Charge a saved card without the customer; raise on decline or when 3-D Secure is wanted."""

        def create() -> ProviderPayment:
            if charge.customer_id not in self.state.customers:
                raise _missing("customer", charge.customer_id)
            card = self.state.cards.get(charge.payment_method_id)
            if card is None:
                raise _missing("PaymentMethod", charge.payment_method_id)
            if card.customer_id != charge.customer_id:
                raise _invalid(
                    f"The provided PaymentMethod {card.id} does not belong to the Customer {charge.customer_id}."
                )
            intent = self._new_intent(
                amount=charge.amount,
                currency=charge.currency,
                customer_id=charge.customer_id,
                metadata=charge.metadata,
                description=charge.description,
                save_card=False,
            )
            intent.payment_method_id = card.id
            outcome = cards.card_by_name(card.test_card).off_session
            if outcome == cards.SUCCEED:
                self._succeed(intent, card)
                return self._intent_info(intent)
            code, message = self._decline(intent, card, outcome)
            if code == "authentication_required":
                raise AuthenticationRequired(message, payment_intent_id=intent.id, http_status=402)
            raise CardDeclined(
                message,
                decline_code=outcome,
                payment_intent_id=intent.id,
                code=code,
                kind=decline_kind(outcome or code),
                http_status=402,
            )

        result: ProviderPayment = self._idempotent(
            "charge_off_session", charge.idempotency_key, charge, create
        )
        return result

    def create_refund(self, request: RefundRequest) -> RefundInfo:
        """Refund part (`amount`) or the rest (`amount=None`) of a succeeded payment."""

        def create() -> RefundInfo:
            charge = self._charge_to_refund(request.payment_intent_id)
            remaining = charge.amount - charge.amount_refunded
            if remaining <= 0:
                raise _invalid(
                    f"Charge {charge.id} has already been refunded.", code="charge_already_refunded"
                )
            amount = remaining if request.amount is None else request.amount
            if amount > remaining:
                raise _invalid(
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                    code="amount_too_large",
                )
            if request.reason is not None and request.reason not in REFUND_REASONS:
                raise _invalid(f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}")
            now = self._now()
            refund_id = self._new_id("re")
            txn = self._ledger(
                amount=-amount, fee=0, currency=charge.currency, source=refund_id, kind="refund"
            )
            refund = RefundInfo(
                id=refund_id,
                status="succeeded",
                amount=amount,
                currency=charge.currency,
                payment_intent_id=charge.payment_intent_id,
                failure_reason=None,
                charge_id=charge.id,
                balance_transaction_id=txn.id,
                created=now.replace(microsecond=0),
            )
            self.state.refunds[refund.id] = refund
            charge = replace(charge, amount_refunded=charge.amount_refunded + amount)
            self.state.charges[charge.id] = charge
            self._record("refund.created", _refund_json(refund, request.metadata))
            self._record("charge.refunded", _charge_json(charge))
            return refund

        result: RefundInfo = self._idempotent("create_refund", request.idempotency_key, request, create)
        return result

    def retrieve_refund(self, refund_id: str) -> RefundInfo:
        """Return a refund as the provider sees it now."""
        self._log("retrieve_refund")
        refund = self.state.refunds.get(refund_id)
        if refund is None:
            raise _missing("refund", refund_id)
        return refund

    def list_events(self, query: EventQuery) -> EventPage:
        """Return one page of events, newest first, as the provider lists them."""
        self._log("list_events")
        events = list(reversed(self.state.events))
        if query.created_after is not None:
            after = query.created_after.replace(microsecond=0)
            events = [event for event in events if event.created > after]
        if query.starting_after is not None:
            ids = [event.id for event in events]
            if query.starting_after not in ids:
                raise _missing("event", query.starting_after)
            events = events[ids.index(query.starting_after) + 1 :]
        return EventPage(events=events[: query.limit], has_more=len(events) > query.limit)

    def list_charges(self, created: CreatedRange) -> list[ChargeInfo]:
        """Return every charge created in the range, newest first."""
        self._log("list_charges")
        return _newest_first_in(list(self.state.charges.values()), created)

    def list_refunds(self, created: CreatedRange) -> list[RefundInfo]:
        """Return every refund created in the range, newest first."""
        self._log("list_refunds")
        return _newest_first_in(list(self.state.refunds.values()), created)

    def list_settlement_lines(self, created: CreatedRange) -> list[SettlementLine]:
        """Return every ledger entry created in the range, newest first."""
        self._log("list_settlement_lines")
        return _newest_first_in(list(self.state.balance_transactions.values()), created)

    def parse_webhook(self, payload: bytes, signature_header: str) -> GatewayEvent:
        """Refuse every webhook: this provider sends none (its events are read with `list_events`)."""
        self._log("parse_webhook")
        raise InvalidWebhookSignature("the in-memory provider sends no webhooks", code="invalid_signature")

    # --- the viewer's side of a page (what the sandbox's hosted page and control API do) ----

    def pay_checkout(self, session_id: str, card_number: str, *, exp: str | None = None) -> PayResult:
        """Pay (or, in setup mode, save) a test card on an open page, as its "Pay" button does."""
        session = self._live_session(session_id)
        if session.status != "open":
            return PayResult("unavailable", _unavailable_message(session))
        wall = self._wall_now()
        try:
            details = cards.read_card(
                card_number,
                exp or f"12/{(wall.year + 5) % 100:02d}",
                cards.default_cvc(card_number),
                now_year=wall.year,
                now_month=wall.month,
            )
        except cards.CardInputError as exc:
            # Refused by the card form before anything reaches the card network: no attempt.
            return PayResult("invalid", exc.message)
        card = _Card(
            id=self._new_id("pm"),
            test_card=details.test_card.name,
            brand=details.test_card.brand,
            last4=details.last4,
            exp_month=details.exp_month,
            exp_year=details.exp_year,
            fingerprint=details.fingerprint,
        )
        self.state.cards[card.id] = card
        outcome = details.test_card.on_session
        if session.mode == "setup":
            setup = self._setup_intent_for(session)
            if outcome == cards.SUCCEED:
                return self._complete_setup(session, setup, card)
            if outcome == cards.AUTHENTICATE:
                setup.status, setup.payment_method_id = "requires_action", card.id
                self._record("setup_intent.requires_action", _setup_json(setup))
                return PayResult("requires_action")
            setup.status = "requires_payment_method"
            self._record("setup_intent.setup_failed", _setup_json(setup))
            return PayResult("declined", cards.DECLINES[outcome][1])
        intent = self._intent_for(session)
        if outcome == cards.SUCCEED:
            self._succeed(intent, card)
            return self._complete_payment(session, intent, card)
        if outcome == cards.AUTHENTICATE:
            intent.status, intent.payment_method_id = "requires_action", card.id
            self._record("payment_intent.requires_action", _intent_json(intent))
            return PayResult("requires_action", payment_intent_id=intent.id)
        _, message = self._decline(intent, card, outcome)
        return PayResult("declined", message, payment_intent_id=intent.id)

    def authenticate_checkout(self, session_id: str, *, succeed: bool = True) -> PayResult:
        """Complete or fail the 3-D Secure step a page is waiting for."""
        session = self._live_session(session_id)
        if session.status != "open":
            return PayResult("unavailable", _unavailable_message(session))
        waiting = (
            self.state.setup_intents.get(session.setup_intent_id or "")
            if session.mode == "setup"
            else self.state.intents.get(session.payment_intent_id or "")
        )
        if waiting is None or waiting.status != "requires_action" or waiting.payment_method_id is None:
            return PayResult("invalid", "There is no payment waiting for authentication.")
        card = self.state.cards[waiting.payment_method_id]
        if isinstance(waiting, _SetupIntent):
            if succeed:
                return self._complete_setup(session, waiting, card)
            waiting.status, waiting.payment_method_id = "requires_payment_method", None
            self._record("setup_intent.setup_failed", _setup_json(waiting))
            return PayResult("declined", "We are unable to authenticate your payment method.")
        if succeed:
            self._succeed(waiting, card)
            return self._complete_payment(session, waiting, card)
        waiting.status, waiting.payment_method_id = "requires_payment_method", None
        waiting.error = (
            "payment_intent_authentication_failure",
            None,
            "The payment method failed authentication.",
        )
        self._record("payment_intent.payment_failed", _intent_json(waiting))
        return PayResult("declined", "We are unable to authenticate your payment method.", waiting.id)

    def payment_intents(self) -> list[ProviderPayment]:
        """Return every payment intent, oldest first."""
        return [self._intent_info(intent) for intent in self.state.intents.values()]

    def checkout_sessions(self) -> list[CheckoutSession]:
        """Return every checkout session, oldest first, as it stands now."""
        return [self._session_info(session) for session in self.state.sessions.values()]

    # --- internals ------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_mem{next(self.state.counter):08d}"

    def _log(self, operation: str, key: str | None = None) -> None:
        self.state.calls.append((operation, key))

    def _idempotent(self, operation: str, key: str, request: Any, create: Callable[[], Any]) -> Any:
        """Run `create` once per key, as Stripe's idempotency layer (and the sandbox's) does.

        A success or a decline is remembered and answered again to the same request; the same
        key with another request is refused; a request refused as invalid is not remembered.
        """
        self._log(operation, key)
        if not key:
            raise ValueError("an idempotency key is required for this call")
        remembered = self.state.keys.get(key)
        if remembered is not None:
            if remembered.request != (operation, request):
                raise PermanentGatewayError(
                    "Keys for idempotent requests can only be used with the same parameters they were "
                    f"first used with. Try using a key other than '{key}' if you meant to execute a "
                    "different request.",
                    code="idempotency_error",
                    http_status=400,
                )
            if remembered.error is not None:
                raise remembered.error
            return remembered.result
        try:
            result = create()
        except (CardDeclined, AuthenticationRequired) as exc:
            self.state.keys[key] = _Remembered(request=(operation, request), error=exc)
            raise
        self.state.keys[key] = _Remembered(request=(operation, request), result=result)
        return result

    def _record(self, type_: str, data: dict[str, Any]) -> None:
        self.state.events.append(
            GatewayEvent(
                id=self._new_id("evt"),
                type=type_,
                created=self._now().replace(microsecond=0),
                object_id=data.get("id"),
                object=data,
            )
        )

    def _live_session(self, session_id: str) -> _Session:
        session = self.state.sessions.get(session_id)
        if session is None:
            raise _missing("checkout.session", session_id)
        if session.status == "open" and session.expires_at <= self._wall_now():
            self._expire(session)
        return session

    def _expire(self, session: _Session) -> None:
        """Close an open session and cancel the intent it started, as the sandbox does."""
        intent = self.state.intents.get(session.payment_intent_id or "")
        setup = self.state.setup_intents.get(session.setup_intent_id or "")
        for started in (intent, setup):
            if started is not None and started.status not in ("succeeded", "canceled"):
                started.status = "canceled"
                event = "payment_intent" if isinstance(started, _Intent) else "setup_intent"
                self._record(f"{event}.canceled", {"id": started.id, "status": "canceled"})
        session.status = "expired"
        self._record("checkout.session.expired", self._session_json(session))

    def _new_intent(
        self,
        *,
        amount: int,
        currency: str,
        customer_id: str | None,
        metadata: dict[str, str],
        description: str,
        save_card: bool,
    ) -> _Intent:
        intent = _Intent(
            id=self._new_id("pi"),
            amount=amount,
            currency=currency,
            customer_id=customer_id,
            metadata=dict(metadata),
            description=description,
            save_card=save_card,
            created=self._now(),
        )
        self.state.intents[intent.id] = intent
        self._record("payment_intent.created", _intent_json(intent))
        return intent

    def _intent_for(self, session: _Session) -> _Intent:
        """Return the session's payment intent, created on the first attempt as Stripe does."""
        if session.payment_intent_id:
            return self.state.intents[session.payment_intent_id]
        intent = self._new_intent(
            amount=session.amount_total or 0,
            currency=session.currency,
            customer_id=session.customer_id,
            metadata=session.metadata,
            description=session.product_name or "",
            save_card=session.save_card,
        )
        session.payment_intent_id = intent.id
        return intent

    def _setup_intent_for(self, session: _Session) -> _SetupIntent:
        if session.setup_intent_id:
            return self.state.setup_intents[session.setup_intent_id]
        setup = _SetupIntent(
            id=self._new_id("seti"), customer_id=session.customer_id, metadata=dict(session.metadata)
        )
        self.state.setup_intents[setup.id] = setup
        session.setup_intent_id = setup.id
        self._record("setup_intent.created", _setup_json(setup))
        return setup

    def _succeed(self, intent: _Intent, card: _Card) -> None:
        """Take the money: a succeeded charge, its ledger entry (with the sandbox's fee), a paid intent."""
        charge_id = self._new_id("ch")
        txn = self._ledger(
            amount=intent.amount,
            fee=processing_fee(intent.amount),
            currency=intent.currency,
            source=charge_id,
            kind="charge",
        )
        charge = self._charge(intent, charge_id, succeeded=True, balance_transaction_id=txn.id)
        intent.status, intent.payment_method_id = "succeeded", card.id
        intent.latest_charge_id, intent.error = charge.id, None
        self._record("charge.succeeded", _charge_json(charge))
        self._record("payment_intent.succeeded", _intent_json(intent))

    def _decline(self, intent: _Intent, card: _Card, outcome: str) -> tuple[str, str]:
        """Record a declined attempt: a failed charge and an intent that needs another card."""
        code, message = cards.DECLINES[outcome]
        charge = self._charge(intent, self._new_id("ch"), succeeded=False, balance_transaction_id=None)
        intent.status, intent.payment_method_id = "requires_payment_method", None
        intent.latest_charge_id, intent.error = charge.id, (code, outcome, message)
        self._record("charge.failed", _charge_json(charge))
        self._record("payment_intent.payment_failed", _intent_json(intent))
        return code, message

    def _charge(
        self, intent: _Intent, charge_id: str, *, succeeded: bool, balance_transaction_id: str | None
    ) -> ChargeInfo:
        charge = ChargeInfo(
            id=charge_id,
            status="succeeded" if succeeded else "failed",
            amount=intent.amount,
            amount_refunded=0,
            currency=intent.currency,
            captured=succeeded,
            payment_intent_id=intent.id,
            balance_transaction_id=balance_transaction_id,
            created=self._now().replace(microsecond=0),
        )
        self.state.charges[charge.id] = charge
        return charge

    def _ledger(self, *, amount: int, fee: int, currency: str, source: str, kind: str) -> SettlementLine:
        txn = SettlementLine(
            id=self._new_id("txn"),
            type=kind,
            kind=SETTLEMENT_KINDS.get(kind, "other"),
            amount=amount,
            fee=fee,
            net=amount - fee,
            currency=currency,
            source_id=source,
            exchange_rate=None,
            created=self._now().replace(microsecond=0),
        )
        self.state.balance_transactions[txn.id] = txn
        return txn

    def _attach(self, card: _Card, customer_id: str) -> None:
        card.customer_id = customer_id
        self._record(
            "payment_method.attached", {"id": card.id, "object": "payment_method", "customer": customer_id}
        )

    def _complete_payment(self, session: _Session, intent: _Intent, card: _Card) -> PayResult:
        if intent.save_card:
            self._attach(card, session.customer_id)
        return self._complete(session, "paid", intent.id)

    def _complete_setup(self, session: _Session, setup: _SetupIntent, card: _Card) -> PayResult:
        self._attach(card, session.customer_id)
        setup.status, setup.payment_method_id, setup.customer_id = "succeeded", card.id, session.customer_id
        self._record("setup_intent.succeeded", _setup_json(setup))
        return self._complete(session, "no_payment_required", None)

    def _complete(
        self, session: _Session, payment_status: CheckoutPaymentStatus, intent_id: str | None
    ) -> PayResult:
        session.status, session.payment_status = "complete", payment_status
        self._record("checkout.session.completed", self._session_json(session))
        return PayResult("succeeded", payment_intent_id=intent_id)

    def _charge_to_refund(self, payment_intent_id: str) -> ChargeInfo:
        intent = self.state.intents.get(payment_intent_id)
        if intent is None:
            raise _missing("payment_intent", payment_intent_id)
        charge = self.state.charges.get(intent.latest_charge_id or "")
        if intent.status != "succeeded" or charge is None or charge.status != "succeeded":
            raise _invalid(
                f"This PaymentIntent ({payment_intent_id}) does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        return charge

    def _session_info(self, session: _Session) -> CheckoutSession:
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

    def _session_json(self, session: _Session) -> dict[str, Any]:
        info = self._session_info(session)
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

    def _intent_info(self, intent: _Intent) -> ProviderPayment:
        card = self.state.cards.get(intent.payment_method_id or "")
        code, decline_code, message = intent.error or (None, None, None)
        return ProviderPayment(
            id=intent.id,
            status=intent.status,
            amount=intent.amount,
            currency=intent.currency,
            customer_id=intent.customer_id,
            payment_method_id=intent.payment_method_id,
            latest_charge_id=intent.latest_charge_id,
            failure_code=code,
            decline_code=decline_code,
            failure_message=message,
            metadata=dict(intent.metadata),
            card=card.info() if card is not None else None,
        )


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
