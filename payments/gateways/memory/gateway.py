"""The `PaymentGateway` interface of the in-memory provider, over its books.

Each call is logged, writes go through the books' idempotency keys, and the viewer's side of a
page is handed to `CheckoutPage`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from payments.gateways.base import (
    CardInfo,
    ChargeInfo,
    CheckoutRequest,
    CheckoutSession,
    CreatedRange,
    CustomerRequest,
    EventFact,
    EventPage,
    EventQuery,
    GatewayEvent,
    OffSessionCharge,
    PaymentMethodSetup,
    ProviderBalance,
    ProviderPayment,
    RefundInfo,
    RefundRequest,
    SettlementLine,
)
from payments.gateways.captured_at_once import CapturedAtOnce
from payments.gateways.errors import (
    AuthenticationRequired,
    CardDeclined,
    DeclineReason,
    InvalidWebhookSignature,
)
from payments.gateways.memory.books import MemoryBooks
from payments.gateways.memory.checkout_page import CheckoutPage
from payments.gateways.memory.records import (
    _CLOCK_SLACK,
    _MAX_LIFETIME,
    _MIN_LIFETIME,
    MemoryState,
    PayResult,
    _charge_json,
    _invalid,
    _missing,
    _newest_first_in,
    _refund_json,
    _Session,
    _session_info,
)

# The fake answers with the test cards and codes of Stripe's sandbox, so it classifies them as Stripe does.
from payments.gateways.stripe_events import event_fact_from_stripe
from payments.gateways.stripe_mapping import decline_kind, decline_reason
from payments.sandbox import cards


def _real_now() -> datetime:
    return datetime.now(UTC)


class MemoryGateway(CapturedAtOnce):
    """The `PaymentGateway` interface over dicts, plus the viewer's side of a checkout page.

    `now` gives the provider's clock for `created` times (the billing clock, as the sandbox
    follows it); `wall_now` the real time a page's life is measured on, as the sandbox and the
    billing service measure it (a viewer needs real minutes to pay).
    """

    def __init__(
        self, *, now: Callable[[], datetime] = _real_now, wall_now: Callable[[], datetime] = _real_now
    ) -> None:
        self._books = MemoryBooks(now=now, wall_now=wall_now)
        self._page = CheckoutPage(self._books)

    @property
    def state(self) -> MemoryState:
        """Return everything the provider knows now, for tests to look at."""
        return self._books.state

    def reset(self) -> None:
        """Forget every object, key, event and call."""
        self._books.state = MemoryState()

    # --- the gateway interface ------------------------------------------------------------

    def create_customer(self, request: CustomerRequest) -> str:
        """Create the customer of a billing account and return its id."""

        def create() -> str:
            customer_id = self._books.new_id("cus")
            self.state.customers[customer_id] = {"email": request.email, "account_ref": request.account_ref}
            self._books.record(
                "customer.created", {"id": customer_id, "object": "customer", "email": request.email}
            )
            return customer_id

        result: str = self._books.idempotent("create_customer", request.idempotency_key, request, create)
        return result

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a checkout page for a locked price ("payment") or to save a card ("setup")."""

        def create() -> CheckoutSession:
            if request.customer_id not in self.state.customers:
                raise _missing("customer", request.customer_id)
            wall = self._books.wall_now()
            expires_at = request.expires_at or wall + _MAX_LIFETIME
            if not wall + _MIN_LIFETIME - _CLOCK_SLACK <= expires_at <= wall + _MAX_LIFETIME + _CLOCK_SLACK:
                raise _invalid(
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                    "Checkout Session creation."
                )
            session = _Session(
                id=self._books.new_id("cs_test"),
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
            return _session_info(session)

        result: CheckoutSession = self._books.idempotent(
            "create_checkout_session", request.idempotency_key, request, create
        )
        return result

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """Return a session as the provider sees it now, expiring it first if its time is up."""
        self._books.log("retrieve_checkout_session")
        return _session_info(self._books.live_session(session_id))

    def expire_checkout_session(self, session_id: str, idempotency_key: str) -> CheckoutSession:
        """Expire an open session so that it can no longer be paid."""

        def expire() -> CheckoutSession:
            session = self._books.live_session(session_id)
            if session.status != "open":
                raise _invalid(
                    'Only Checkout Sessions with a status in ["open"] can be expired. '
                    f"This Checkout Session has a status of {session.status}."
                )
            self._books.expire(session)
            return _session_info(session)

        result: CheckoutSession = self._books.idempotent(
            "expire_checkout_session", idempotency_key, ("expire", session_id), expire
        )
        return result

    def retrieve_payment(self, payment_intent_id: str) -> ProviderPayment:
        """Return a payment attempt with the card it used."""
        self._books.log("retrieve_payment")
        intent = self.state.intents.get(payment_intent_id)
        if intent is None:
            raise _missing("payment_intent", payment_intent_id)
        return self._books.intent_info(intent)

    def retrieve_payment_method_setup(self, setup_intent_id: str) -> PaymentMethodSetup:
        """Return a setup intent, to learn which card a setup checkout saved."""
        self._books.log("retrieve_payment_method_setup")
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
        self._books.log("retrieve_payment_method")
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
            intent = self._books.new_intent(
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
                self._books.succeed(intent, card)
                return self._books.intent_info(intent)
            code, message = self._books.decline(intent, card, outcome)
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

        result: ProviderPayment = self._books.idempotent(
            "charge_off_session", charge.idempotency_key, charge, create
        )
        return result

    def create_refund(self, request: RefundRequest) -> RefundInfo:
        """Refund part (`amount`) or the rest (`amount=None`) of a succeeded payment."""

        def create() -> RefundInfo:
            charge = self._books.charge_to_refund(request.payment_intent_id)
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
            now = self._books.now()
            refund_id = self._books.new_id("re")
            txn = self._books.ledger(
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
            self._books.record("refund.created", _refund_json(refund, request.metadata))
            self._books.record("charge.refunded", _charge_json(charge))
            return refund

        result: RefundInfo = self._books.idempotent("create_refund", request.idempotency_key, request, create)
        return result

    def retrieve_refund(self, refund_id: str) -> RefundInfo:
        """Return a refund as the provider sees it now."""
        self._books.log("retrieve_refund")
        refund = self.state.refunds.get(refund_id)
        if refund is None:
            raise _missing("refund", refund_id)
        return refund

    def list_events(self, query: EventQuery) -> EventPage:
        """Return one page of events, newest first, as the provider lists them."""
        self._books.log("list_events")
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
        self._books.log("list_charges")
        return _newest_first_in(list(self.state.charges.values()), created)

    def list_refunds(self, created: CreatedRange) -> list[RefundInfo]:
        """Return every refund created in the range, newest first."""
        self._books.log("list_refunds")
        return _newest_first_in(list(self.state.refunds.values()), created)

    def list_settlement_lines(self, created: CreatedRange) -> list[SettlementLine]:
        """Return every ledger entry created in the range, newest first."""
        self._books.log("list_settlement_lines")
        return _newest_first_in(list(self.state.balance_transactions.values()), created)

    def retrieve_balance(self) -> list[ProviderBalance]:
        """Return what its ledger entries add up to (their net), per currency, all of it available.

        Payments add their amount less the fee, refunds take theirs out, and a payout moves money
        out to the bank. All of it is available, none pending: like the sandbox, whose entries are
        available the moment they are booked, this provider holds nothing back, so a test sees
        the balance move with each entry instead of waiting for a release that never comes.
        """
        self._books.log("retrieve_balance")
        totals: dict[str, int] = {}
        for line in self.state.balance_transactions.values():
            totals[line.currency] = totals.get(line.currency, 0) + line.net
        return [
            ProviderBalance(currency=currency, available=total, pending=0)
            for currency, total in sorted(totals.items())
        ]

    # It sends no webhooks; the header is named so that the interface is whole.
    webhook_signature_header = "Memory-Signature"

    def decline_reason(self, code: str | None) -> DeclineReason:
        """Return what one of its decline codes (the sandbox's, which are Stripe's) means for the viewer."""
        return decline_reason(code)

    def event_fact(self, event: GatewayEvent) -> EventFact | None:
        """Return what one of its events tells us: they have Stripe's shapes, as the sandbox's do."""
        return event_fact_from_stripe(event)

    def parse_webhook(self, payload: bytes, signature_header: str) -> GatewayEvent:
        """Refuse every webhook: this provider sends none (its events are read with `list_events`)."""
        self._books.log("parse_webhook")
        raise InvalidWebhookSignature("the in-memory provider sends no webhooks", code="invalid_signature")

    # --- the viewer's side of a page (see `checkout_page`) ---------------------------------

    def pay_checkout(self, session_id: str, card_number: str, *, exp: str | None = None) -> PayResult:
        """Pay (or, in setup mode, save) a test card on an open page, as its "Pay" button does."""
        return self._page.pay_checkout(session_id, card_number, exp=exp)

    def authenticate_checkout(self, session_id: str, *, succeed: bool = True) -> PayResult:
        """Complete or fail the 3-D Secure step a page is waiting for."""
        return self._page.authenticate_checkout(session_id, succeed=succeed)

    def payment_intents(self) -> list[ProviderPayment]:
        """Return every payment intent, oldest first."""
        return [self._books.intent_info(intent) for intent in self.state.intents.values()]

    def checkout_sessions(self) -> list[CheckoutSession]:
        """Return every checkout session, oldest first, as it stands now."""
        return [_session_info(session) for session in self.state.sessions.values()]

    # --- the provider's own moves -----------------------------------------------------------

    def pay_out(self, amount: int, currency: str) -> SettlementLine:
        """Pay `amount` of the balance out to the bank: a "payout" ledger entry taking it out."""
        return self._books.ledger(
            amount=-amount, fee=0, currency=currency, source=self._books.new_id("po"), kind="payout"
        )
