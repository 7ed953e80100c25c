"""The YooKassa gateway: API v3 through our thin client, answers read with the official SDK's models.

Everything is passed per instance (shop id, secret key, base address, timeout, receipt
settings); no setting is read and nothing global is set here. YooKassa's objects never leave
the package: they become the plain dataclasses of `payments.gateways.base`.

YooKassa has no customers, no hosted checkout apart from the payment itself, no events list
and no balance: the payment *is* the checkout page (`confirmation.confirmation_url`), a
customer id is ours alone, and `list_events`/`retrieve_balance` answer empty (docs/gateway.md).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

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
from payments.gateways.errors import (
    AuthenticationRequired,
    CardDeclined,
    DeclineReason,
    PermanentGatewayError,
)
from payments.gateways.ratelimit import RateLimiter
from payments.gateways.retry import RetryPolicy
from payments.gateways.yookassa.client import DEFAULT_API_BASE, YooKassaClient
from payments.gateways.yookassa.events import (
    event_from_notification,
    fact_from_payment,
    fact_from_refund,
    object_kind,
)
from payments.gateways.yookassa.mapping import (
    amount_json,
    card_from_payment_method,
    charge_from_model,
    checkout_from_model,
    currency_of,
    decline_kind,
    decline_reason,
    format_time,
    minor_units,
    parse_payment,
    parse_refund,
    parse_saved_method,
    payment_from_model,
    refund_from_model,
    settlement_from_payment,
    settlement_from_refund,
    setup_from_model,
    unexpected_response,
)
from payments.gateways.yookassa.payloads import (
    ReceiptSettings,
    checkout_payment_body,
    off_session_body,
    refund_body,
)

T = TypeVar("T")

# YooKassa's largest page of a list.
LIST_PAGE_SIZE = 100


class YooKassaGateway:
    """Talk to YooKassa (or the offline YooKassa sandbox at `api_base`) for one shop.

    Every request first takes its turn under `limiter` (the shared outgoing rate limit, one per
    shop), and temporary failures (timeouts, 5xx, 429) are retried with backoff under the same
    Idempotence-Key, which YooKassa answers with the first result.
    """

    def __init__(
        self,
        *,
        shop_id: str,
        secret_key: str,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 10,
        max_retries: int = 2,
        receipts: ReceiptSettings | None = None,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._client = YooKassaClient(
            shop_id=shop_id, secret_key=secret_key, api_base=api_base, timeout=timeout
        )
        self._receipts = receipts or ReceiptSettings()
        self._limiter = limiter
        self._retry = RetryPolicy(
            max_retries=max_retries,
            base_delay=retry_base_delay,
            max_delay=retry_max_delay,
            sleep=sleep,
            provider="yookassa",
        )

    webhook_signature_header = ""  # YooKassa signs nothing: notifications are filtered by IP instead
    card_check_holds_funds = True  # a card is saved by holding 1.00 RUB, released by cancel_payment

    # --- customers ------------------------------------------------------------------------

    def create_customer(self, request: CustomerRequest) -> str:
        """Return our own customer id for an account: YooKassa keeps no customers (no call is made)."""
        digest = hashlib.sha256(request.account_ref.encode("utf-8")).hexdigest()[:24]
        return f"ykcus_{digest}"

    # --- checkout: the payment is the page --------------------------------------------------

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Create a payment with a redirect confirmation: paid in one stage, or a held card check."""
        body = checkout_payment_body(request, self._receipts)
        data = self._call(
            "create_checkout_session",
            lambda: self._client.request(
                "POST", "/payments", body=body, idempotency_key=request.idempotency_key
            ),
        )
        return checkout_from_model(parse_payment(data))

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """Return the payment behind a page as our CheckoutSession."""
        return checkout_from_model(self._payment(session_id, "retrieve_checkout_session"))

    def expire_checkout_session(self, session_id: str, idempotency_key: str) -> CheckoutSession:
        """Cancel a page's payment so it can no longer be paid (YooKassa cancels only held ones).

        A pending payment cannot be canceled at YooKassa; it expires by itself within the hour,
        so the page is answered as it stands and the domain treats it as replaced.
        """
        model = self._payment(session_id, "expire_checkout_session")
        if str(model.status) == "waiting_for_capture":
            model = parse_payment(self._cancel(session_id, idempotency_key, "expire_checkout_session"))
        return checkout_from_model(model)

    # --- payments -------------------------------------------------------------------------

    def retrieve_payment(self, payment_intent_id: str) -> ProviderPayment:
        """Return a payment with the card it used."""
        return payment_from_model(self._payment(payment_intent_id, "retrieve_payment"))

    def retrieve_payment_method_setup(self, setup_intent_id: str) -> PaymentMethodSetup:
        """Return a card check (a held payment) and the method it saved."""
        return setup_from_model(self._payment(setup_intent_id, "retrieve_payment_method_setup"))

    def retrieve_payment_method(self, payment_method_id: str) -> CardInfo:
        """Return the displayable details of a saved card (GET /payment_methods/{id})."""
        data = self._call(
            "retrieve_payment_method",
            lambda: self._client.request("GET", f"/payment_methods/{payment_method_id}"),
        )
        card = card_from_payment_method(parse_saved_method(data))
        if card is None:
            raise PermanentGatewayError(
                f"payment method {payment_method_id} is not a card", code="payment_method_not_card"
            )
        return card

    def charge_off_session(self, charge: OffSessionCharge) -> ProviderPayment:
        """Charge a saved method; raise CardDeclined (soft or hard) or AuthenticationRequired."""
        body = off_session_body(charge, self._receipts)
        data = self._call(
            "charge_off_session",
            lambda: self._client.request(
                "POST", "/payments", body=body, idempotency_key=charge.idempotency_key
            ),
        )
        model = parse_payment(data)
        info = payment_from_model(model)
        if info.status == "requires_payment_method":
            reason = info.decline_code
            if reason == "3d_secure_failed":
                raise AuthenticationRequired(
                    "the payment needs the customer to authenticate", payment_intent_id=info.id
                )
            raise CardDeclined(
                f"YooKassa declined the payment: {reason}",
                decline_code=reason,
                payment_intent_id=info.id,
                code=reason or "card_declined",
                kind=decline_kind(reason),
            )
        if info.status == "requires_action":
            # A saved card asked for 3-D Secure: nobody is there to pass it.
            raise AuthenticationRequired(
                "the payment needs the customer to authenticate", payment_intent_id=info.id
            )
        return info

    def capture_payment(
        self, payment_id: str, idempotency_key: str, amount: int | None = None
    ) -> ProviderPayment:
        """Take a held (two-stage) payment, all of it or `amount` of it."""
        body: dict[str, Any] = {}
        if amount is not None:
            current = self._payment(payment_id, "capture_payment")
            body["amount"] = amount_json(amount, currency_of(current.amount, "payment"))
        data = self._call(
            "capture_payment",
            lambda: self._client.request(
                "POST", f"/payments/{payment_id}/capture", body=body, idempotency_key=idempotency_key
            ),
        )
        return payment_from_model(parse_payment(data))

    def cancel_payment(self, payment_id: str, idempotency_key: str) -> ProviderPayment:
        """Release a held (two-stage) payment: a card check's hold."""
        return payment_from_model(parse_payment(self._cancel(payment_id, idempotency_key, "cancel_payment")))

    # --- refunds --------------------------------------------------------------------------

    def create_refund(self, request: RefundRequest) -> RefundInfo:
        """Refund `amount` of a payment, or what is left of it (`amount=None`), with its receipt."""
        amount = request.amount
        payment = self._payment(request.payment_intent_id, "create_refund")
        currency = currency_of(payment.amount, "payment")
        if amount is None:
            # YooKassa always wants the amount: the rest is what was paid less what was refunded.
            refunded = minor_units(payment.refunded_amount, "payment") if payment.refunded_amount else 0
            amount = minor_units(payment.amount, "payment") - refunded
            if amount <= 0:
                raise PermanentGatewayError(
                    "the payment is already refunded in full", code="charge_already_refunded"
                )
        body = refund_body(request, amount=amount, currency=currency, settings=self._receipts)
        data = self._call(
            "create_refund",
            lambda: self._client.request(
                "POST", "/refunds", body=body, idempotency_key=request.idempotency_key
            ),
        )
        return _refund_info(data)

    def retrieve_refund(self, refund_id: str) -> RefundInfo:
        """Return a refund as YooKassa sees it now."""
        return _refund_info(
            self._call("retrieve_refund", lambda: self._client.request("GET", f"/refunds/{refund_id}"))
        )

    # --- events, ledgers ------------------------------------------------------------------

    def list_events(self, query: EventQuery) -> EventPage:
        """Return no events: YooKassa keeps no list of its notifications (reconciliation lists payments)."""
        return EventPage(events=[], has_more=False)

    def list_charges(self, created: CreatedRange) -> list[ChargeInfo]:
        """Return every payment created in the range, whatever its status, reading all pages."""
        return [charge_from_model(parse_payment(item)) for item in self._list_all("/payments", created)]

    def list_refunds(self, created: CreatedRange) -> list[RefundInfo]:
        """Return every refund created in the range, reading all pages."""
        return [_refund_info(item) for item in self._list_all("/refunds", created)]

    def list_settlement_lines(self, created: CreatedRange) -> list[SettlementLine]:
        """Return what succeeded payments (net of `income_amount`) and refunds did to the balance."""
        lines: list[SettlementLine] = []
        for item in self._list_all("/payments", created):
            line = settlement_from_payment(parse_payment(item))
            if line is not None:
                lines.append(line)
        for item in self._list_all("/refunds", created):
            line = settlement_from_refund(parse_refund(item))
            if line is not None:
                lines.append(line)
        return lines

    def retrieve_balance(self) -> list[ProviderBalance]:
        """Return nothing: YooKassa's API has no balance of a shop (payouts are the bank's business)."""
        return []

    # --- notifications --------------------------------------------------------------------

    def parse_webhook(self, payload: bytes, signature_header: str) -> GatewayEvent:
        """Read a notification; it is not signed (`signature_header` is ignored): filter it by IP."""
        return event_from_notification(payload)

    def event_fact(self, event: GatewayEvent) -> EventFact | None:
        """Return what a notification tells us, from its object re-read from YooKassa by id.

        The body is never believed: a forged notification about a made-up id raises
        PermanentGatewayError (not found), and one about a real payment says only what the
        payment says now.
        """
        kind = object_kind(event)
        if kind is None or not event.object_id:
            return None
        if kind == "payment":
            return fact_from_payment(self._payment(event.object_id, "event_fact"))
        data = self._call("event_fact", lambda: self._client.request("GET", f"/refunds/{event.object_id}"))
        return fact_from_refund(parse_refund(data))

    def decline_reason(self, code: str | None) -> DeclineReason:
        """Return what one of YooKassa's cancellation reasons means for the viewer."""
        return decline_reason(code)

    # --- plumbing -------------------------------------------------------------------------

    def _payment(self, payment_id: str, operation: str) -> Any:
        return parse_payment(
            self._call(operation, lambda: self._client.request("GET", f"/payments/{payment_id}"))
        )

    def _cancel(self, payment_id: str, idempotency_key: str, operation: str) -> dict[str, Any]:
        return self._call(
            operation,
            lambda: self._client.request(
                "POST", f"/payments/{payment_id}/cancel", body={}, idempotency_key=idempotency_key
            ),
        )

    def _list_all(self, path: str, created: CreatedRange) -> Iterator[dict[str, Any]]:
        """Yield every object of a list filtered by `created_at`, one rate-limited call per page."""
        params: dict[str, Any] = {
            "created_at.gte": format_time(created.start),
            "created_at.lt": format_time(created.end),
            "limit": LIST_PAGE_SIZE,
        }
        while True:
            page = self._call(
                f"list {path}", functools.partial(self._client.request, "GET", path, params=dict(params))
            )
            items = page.get("items")
            if not isinstance(items, list):
                raise unexpected_response(f"list {path} without items")
            yield from (item for item in items if isinstance(item, dict))
            cursor = page.get("next_cursor")
            if not cursor or not items:
                return
            params["cursor"] = cursor

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        """Run one request with the rate limit and retries (the same key on every attempt)."""
        wait_turn = self._limiter.acquire if self._limiter is not None else None
        return self._retry.run(call, operation=operation, wait_turn=wait_turn)


def _refund_info(data: dict[str, Any]) -> RefundInfo:
    return refund_from_model(parse_refund(data))
