"""The viewer's side of an in-memory checkout page: what the sandbox's hosted page and control API do.

Paying (or, in setup mode, saving) a test card on an open page, finishing or failing its
3-D Secure step, and completing the page once the money is taken or the card saved.
"""

from __future__ import annotations

from payments.gateways.base import CheckoutPaymentStatus
from payments.gateways.memory.books import MemoryBooks
from payments.gateways.memory.records import (
    PayResult,
    _Card,
    _Intent,
    _intent_json,
    _Session,
    _session_json,
    _setup_json,
    _SetupIntent,
    _unavailable_message,
)
from payments.sandbox import cards


class CheckoutPage:
    """Act as the viewer on the pages of one in-memory provider."""

    def __init__(self, books: MemoryBooks) -> None:
        self._books = books

    def pay_checkout(self, session_id: str, card_number: str, *, exp: str | None = None) -> PayResult:
        """Pay (or, in setup mode, save) a test card on an open page, as its "Pay" button does."""
        session = self._books.live_session(session_id)
        if session.status != "open":
            return PayResult("unavailable", _unavailable_message(session))
        wall = self._books.wall_now()
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
            id=self._books.new_id("pm"),
            test_card=details.test_card.name,
            brand=details.test_card.brand,
            last4=details.last4,
            exp_month=details.exp_month,
            exp_year=details.exp_year,
            fingerprint=details.fingerprint,
        )
        self._books.state.cards[card.id] = card
        outcome = details.test_card.on_session
        if session.mode == "setup":
            setup = self._setup_intent_for(session)
            if outcome == cards.SUCCEED:
                return self._complete_setup(session, setup, card)
            if outcome == cards.AUTHENTICATE:
                setup.status, setup.payment_method_id = "requires_action", card.id
                self._books.record("setup_intent.requires_action", _setup_json(setup))
                return PayResult("requires_action")
            setup.status = "requires_payment_method"
            self._books.record("setup_intent.setup_failed", _setup_json(setup))
            return PayResult("declined", cards.DECLINES[outcome][1])
        intent = self._intent_for(session)
        if outcome == cards.SUCCEED:
            self._books.succeed(intent, card)
            return self._complete_payment(session, intent, card)
        if outcome == cards.AUTHENTICATE:
            intent.status, intent.payment_method_id = "requires_action", card.id
            self._books.record("payment_intent.requires_action", _intent_json(intent))
            return PayResult("requires_action", payment_intent_id=intent.id)
        _, message = self._books.decline(intent, card, outcome)
        return PayResult("declined", message, payment_intent_id=intent.id)

    def authenticate_checkout(self, session_id: str, *, succeed: bool = True) -> PayResult:
        """Complete or fail the 3-D Secure step a page is waiting for."""
        session = self._books.live_session(session_id)
        if session.status != "open":
            return PayResult("unavailable", _unavailable_message(session))
        waiting = (
            self._books.state.setup_intents.get(session.setup_intent_id or "")
            if session.mode == "setup"
            else self._books.state.intents.get(session.payment_intent_id or "")
        )
        if waiting is None or waiting.status != "requires_action" or waiting.payment_method_id is None:
            return PayResult("invalid", "There is no payment waiting for authentication.")
        card = self._books.state.cards[waiting.payment_method_id]
        if isinstance(waiting, _SetupIntent):
            if succeed:
                return self._complete_setup(session, waiting, card)
            waiting.status, waiting.payment_method_id = "requires_payment_method", None
            self._books.record("setup_intent.setup_failed", _setup_json(waiting))
            return PayResult("declined", "We are unable to authenticate your payment method.")
        if succeed:
            self._books.succeed(waiting, card)
            return self._complete_payment(session, waiting, card)
        waiting.status, waiting.payment_method_id = "requires_payment_method", None
        waiting.error = (
            "payment_intent_authentication_failure",
            None,
            "The payment method failed authentication.",
        )
        self._books.record("payment_intent.payment_failed", _intent_json(waiting))
        return PayResult("declined", "We are unable to authenticate your payment method.", waiting.id)

    def _intent_for(self, session: _Session) -> _Intent:
        """Return the session's payment intent, created on the first attempt as Stripe does."""
        if session.payment_intent_id:
            return self._books.state.intents[session.payment_intent_id]
        intent = self._books.new_intent(
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
            return self._books.state.setup_intents[session.setup_intent_id]
        setup = _SetupIntent(
            id=self._books.new_id("seti"), customer_id=session.customer_id, metadata=dict(session.metadata)
        )
        self._books.state.setup_intents[setup.id] = setup
        session.setup_intent_id = setup.id
        self._books.record("setup_intent.created", _setup_json(setup))
        return setup

    def _attach(self, card: _Card, customer_id: str) -> None:
        card.customer_id = customer_id
        self._books.record(
            "payment_method.attached", {"id": card.id, "object": "payment_method", "customer": customer_id}
        )

    def _complete_payment(self, session: _Session, intent: _Intent, card: _Card) -> PayResult:
        if intent.save_card:
            self._attach(card, session.customer_id)
        return self._complete(session, "paid", intent.id)

    def _complete_setup(self, session: _Session, setup: _SetupIntent, card: _Card) -> PayResult:
        self._attach(card, session.customer_id)
        setup.status, setup.payment_method_id, setup.customer_id = "succeeded", card.id, session.customer_id
        self._books.record("setup_intent.succeeded", _setup_json(setup))
        return self._complete(session, "no_payment_required", None)

    def _complete(
        self, session: _Session, payment_status: CheckoutPaymentStatus, intent_id: str | None
    ) -> PayResult:
        session.status, session.payment_status = "complete", payment_status
        self._books.record("checkout.session.completed", _session_json(session))
        return PayResult("succeeded", payment_intent_id=intent_id)
