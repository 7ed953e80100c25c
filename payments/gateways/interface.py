"""The payment gateway interface: what the billing domain needs from a payment provider.

Each provider package implements it (Stripe's `stripe.StripeGateway`, YooKassa's
`yookassa.YooKassaGateway`, the in-memory test provider); the registry in `payments.gateways` hands out the one a row's provider names.
"""

from __future__ import annotations

from typing import Protocol

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
from payments.gateways.errors import DeclineReason


class PaymentGateway(Protocol):
    """What the billing domain needs from a payment provider."""

    def create_customer(self, request: CustomerRequest) -> str:
        """Create the provider-side customer of a billing account and return its id."""
        ...

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a hosted checkout page for a locked price, or to save a payment method."""
        ...

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """Return the checkout session as the provider sees it now."""
        ...

    def expire_checkout_session(self, session_id: str, idempotency_key: str) -> CheckoutSession:
        """Close an open checkout page so that it can no longer be paid."""
        ...

    def retrieve_payment(self, payment_intent_id: str) -> ProviderPayment:
        """Return a payment attempt, with the card it used when that is a card."""
        ...

    def retrieve_payment_method_setup(self, setup_intent_id: str) -> PaymentMethodSetup:
        """Return a payment method being saved, to learn which one a setup checkout saved."""
        ...

    def retrieve_payment_method(self, payment_method_id: str) -> CardInfo:
        """Return the displayable details of a saved card."""
        ...

    def charge_off_session(self, charge: OffSessionCharge) -> ProviderPayment:
        """Charge a saved payment method without the customer; raise on decline or 3-D Secure."""
        ...

    def capture_payment(
        self, payment_id: str, idempotency_key: str, amount: int | None = None
    ) -> ProviderPayment:
        """Take a held (two-stage) payment, all of it or `amount` of it.

        Only providers whose `card_check_holds_funds` is true hold payments; the others raise
        NotImplementedError (nothing of ours is ever held there).
        """
        ...

    def cancel_payment(self, payment_id: str, idempotency_key: str) -> ProviderPayment:
        """Release a held (two-stage) payment, e.g. a card check's hold; see `capture_payment`."""
        ...

    @property
    def card_check_holds_funds(self) -> bool:
        """Whether a setup checkout (a trial, a card update) leaves a hold that `cancel_payment` releases.

        YooKassa saves a card by holding 1.00 RUB (a payment with `capture: false`); Stripe saves
        it with a SetupIntent, which holds nothing.
        """
        ...

    def create_refund(self, request: RefundRequest) -> RefundInfo:
        """Refund part or all of a payment."""
        ...

    def retrieve_refund(self, refund_id: str) -> RefundInfo:
        """Return a refund as the provider sees it now."""
        ...

    def list_events(self, query: EventQuery) -> EventPage:
        """Return one page of the provider's events."""
        ...

    def list_charges(self, created: CreatedRange) -> list[ChargeInfo]:
        """Return every charge created in the range, whatever its status, reading all pages."""
        ...

    def list_refunds(self, created: CreatedRange) -> list[RefundInfo]:
        """Return every refund created in the range, whatever its status, reading all pages."""
        ...

    def list_settlement_lines(self, created: CreatedRange) -> list[SettlementLine]:
        """Return every entry of the provider's ledger created in the range, reading all pages."""
        ...

    def retrieve_balance(self) -> list[ProviderBalance]:
        """Return what the provider holds for us now, one value per currency, without changing anything."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str) -> GatewayEvent:
        """Verify a webhook's signature on its raw body and return the event it carries."""
        ...

    def decline_reason(self, code: str | None) -> DeclineReason:
        """Return what one of the provider's decline codes (as a payment stored it) means for the viewer."""
        ...

    def event_fact(self, event: GatewayEvent) -> EventFact | None:
        """Return what an event (fresh or stored) tells us, or None for one we do not act on.

        Raises PermanentGatewayError for an event of a known type whose object cannot be read.
        """
        ...

    @property
    def webhook_signature_header(self) -> str:
        """The HTTP header the provider signs its webhooks in."""
        ...
