"""Unit tests of the Stripe gateway: request building, error mapping, retries and webhooks.

A tiny HTTP stub stands in for Stripe only where an emulator cannot produce the case (a 500
followed by a 200, a 429, a timeout) or where the exact bytes on the wire are the point.
No database is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
from django.core.exceptions import ImproperlyConfigured

from payments.gateways import get_gateway, is_stripe_api_base
from payments.gateways.base import (
    CheckoutRequest,
    CreatedRange,
    CustomerRequest,
    EventQuery,
    OffSessionCharge,
    RefundRequest,
)
from payments.gateways.errors import (
    AuthenticationRequired,
    CardDeclined,
    GatewayError,
    InvalidWebhookSignature,
    PermanentGatewayError,
    RateLimited,
    TemporaryGatewayError,
)
from payments.gateways.retry import RetryPolicy
from payments.gateways.stripe import StripeGateway
from payments.gateways.stripe_mapping import gateway_error_from_stripe

WEBHOOK_SECRET = "whsec_unit_test_secret"
API_KEY = "sk_test_unit"


# --- a scripted stand-in for Stripe -------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


class StubStripe:
    """Answer each request with the next scripted reply and remember what was asked."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub._handle(self)

            def do_POST(self) -> None:
                stub._handle(self)

            def do_DELETE(self) -> None:
                stub._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def reply(self, status: int = 200, body: Any = None, **kwargs: Any) -> None:
        self.replies.append(Reply(status=status, body=body, **kwargs))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length).decode() if length else ""
        parts = urlsplit(handler.path)
        self.requests.append(
            Recorded(
                method=handler.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={key.lower(): value for key, value in handler.headers.items()},
                form=dict(parse_qsl(raw_body, keep_blank_values=True)),
            )
        )
        reply = self.replies.popleft() if self.replies else Reply(500, {"error": {"message": "no reply"}})
        if reply.delay:
            time.sleep(reply.delay)
        payload = reply.raw if reply.raw is not None else json.dumps(reply.body or {}).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            for key, value in reply.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test): nothing left to answer


@pytest.fixture
def stub() -> Iterator[StubStripe]:
    server = StubStripe()
    yield server
    server.close()


def make_gateway(stub: StubStripe, **kwargs: Any) -> StripeGateway:
    options: dict[str, Any] = {
        "api_key": API_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "api_base": stub.url,
        "timeout": 5,
        "max_retries": 2,
        "retry_base_delay": 0.001,
        "retry_max_delay": 0.01,
    }
    options.update(kwargs)
    return StripeGateway(**options)


@pytest.fixture
def gateway(stub: StubStripe) -> StripeGateway:
    return make_gateway(stub)


# --- Stripe-shaped bodies -----------------------------------------------------------------

EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def session_json(**overrides: Any) -> dict[str, Any]:
    body = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "url": "https://checkout.stripe.com/c/pay/cs_test_1",
        "status": "open",
        "payment_status": "unpaid",
        "payment_intent": None,
        "setup_intent": None,
        "customer": "cus_1",
        "client_reference_id": "pay-1",
        "metadata": {"payment_id": "pay-1"},
        "amount_total": 1299,
        "currency": "eur",
        "expires_at": int(EXPIRES.timestamp()),
    }
    body.update(overrides)
    return body


def card_json(pm_id: str = "pm_1") -> dict[str, Any]:
    return {
        "id": pm_id,
        "object": "payment_method",
        "type": "card",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
    }


def payment_intent_json(**overrides: Any) -> dict[str, Any]:
    body = {
        "id": "pi_1",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 1299,
        "currency": "eur",
        "customer": "cus_1",
        "payment_method": card_json(),
        "latest_charge": "ch_1",
        "last_payment_error": None,
        "metadata": {"renewal": "sub-1"},
    }
    body.update(overrides)
    return body


def error_json(message: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"message": message, **fields}}


def checkout_request(**overrides: Any) -> CheckoutRequest:
    values: dict[str, Any] = {
        "mode": "payment",
        "customer_id": "cus_1",
        "amount": 1299,
        "currency": "EUR",
        "product_name": "Premium, 1 month",
        "client_reference_id": "pay-1",
        "metadata": {"payment_id": "pay-1"},
        "save_payment_method": True,
        "success_url": "https://cinema.example/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://cinema.example/billing/cancel",
        "expires_at": EXPIRES,
        "locale": "ru",
        "idempotency_key": "payment:pay-1",
    }
    values.update(overrides)
    return CheckoutRequest(**values)


def off_session_charge(**overrides: Any) -> OffSessionCharge:
    values: dict[str, Any] = {
        "customer_id": "cus_1",
        "payment_method_id": "pm_1",
        "amount": 1299,
        "currency": "EUR",
        "description": "Premium renewal",
        "metadata": {"renewal": "sub-1"},
        "idempotency_key": "renewal:sub-1:2030-01-01T00:00:00+00:00",
    }
    values.update(overrides)
    return OffSessionCharge(**values)


# --- request building ---------------------------------------------------------------------


def test_create_customer_sends_email_account_ref_and_callers_key(stub, gateway):
    stub.reply(body={"id": "cus_1", "object": "customer"})

    customer_id = gateway.create_customer(
        CustomerRequest(account_ref="acc-7", email="viewer@example.com", idempotency_key="customer:acc-7")
    )

    assert customer_id == "cus_1"
    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v1/customers")
    assert request.form == {"email": "viewer@example.com", "metadata[account_ref]": "acc-7"}
    assert request.headers["idempotency-key"] == "customer:acc-7"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


def test_api_version_is_sent_when_configured(stub):
    gateway = make_gateway(stub, api_version="2025-01-27.acacia")
    stub.reply(body={"id": "cus_1", "object": "customer"})

    gateway.create_customer(CustomerRequest("acc-7", "viewer@example.com", "customer:acc-7"))

    assert stub.requests[0].headers["stripe-version"] == "2025-01-27.acacia"


def module_globals() -> tuple[Any, ...]:
    return (
        stripe.api_key,
        stripe.api_base,
        stripe.api_version,
        stripe.max_network_retries,
        stripe.default_http_client,
    )


def test_gateway_sets_nothing_on_the_stripe_module(stub):
    before = module_globals()
    gateway = make_gateway(stub, api_version="2025-01-27.acacia")
    stub.reply(body={"id": "cus_1", "object": "customer"})

    gateway.create_customer(CustomerRequest("acc-7", "viewer@example.com", "customer:acc-7"))

    assert module_globals() == before


def test_payment_checkout_sends_locked_price_as_one_line_item(stub, gateway):
    stub.reply(body=session_json())

    session = gateway.create_checkout_session(checkout_request())

    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions")
    assert request.headers["idempotency-key"] == "payment:pay-1"
    assert request.form == {
        "mode": "payment",
        "customer": "cus_1",
        "client_reference_id": "pay-1",
        "metadata[payment_id]": "pay-1",
        # Both return addresses carry Stripe's placeholder for its page's id, added once.
        "success_url": "https://cinema.example/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://cinema.example/billing/cancel?session_id={CHECKOUT_SESSION_ID}",
        "expires_at": str(int(EXPIRES.timestamp())),
        "locale": "ru",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "1299",
        "line_items[0][price_data][product_data][name]": "Premium, 1 month",
        "payment_intent_data[metadata][payment_id]": "pay-1",
        "payment_intent_data[setup_future_usage]": "off_session",
    }
    assert session.id == "cs_test_1"
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.currency == "EUR"
    assert session.amount_total == 1299
    assert session.expires_at == EXPIRES
    assert session.expires_at.tzinfo is UTC
    assert session.payment_intent_id is None


def test_payment_checkout_without_saving_the_card_omits_setup_future_usage(stub, gateway):
    stub.reply(body=session_json())

    gateway.create_checkout_session(checkout_request(save_payment_method=False, expires_at=None, locale=None))

    form = stub.requests[0].form
    assert "payment_intent_data[setup_future_usage]" not in form
    assert "expires_at" not in form
    assert "locale" not in form
    assert form["payment_intent_data[metadata][payment_id]"] == "pay-1"


def test_setup_checkout_sends_currency_and_setup_intent_metadata(stub, gateway):
    stub.reply(
        body=session_json(
            payment_status="no_payment_required", amount_total=None, setup_intent="seti_1", currency="eur"
        )
    )

    session = gateway.create_checkout_session(
        checkout_request(mode="setup", amount=None, product_name=None, idempotency_key="setup:acc-7:1")
    )

    form = stub.requests[0].form
    assert form["mode"] == "setup"
    assert form["currency"] == "eur"
    assert form["setup_intent_data[metadata][payment_id]"] == "pay-1"
    assert not any(key.startswith(("line_items", "payment_intent_data")) for key in form)
    assert session.setup_intent_id == "seti_1"
    assert session.payment_status == "no_payment_required"
    assert session.amount_total is None


def test_retrieve_checkout_session_reads_expanded_or_plain_ids(stub, gateway):
    stub.reply(
        body=session_json(
            status="complete",
            payment_status="paid",
            payment_intent={"id": "pi_1", "object": "payment_intent"},
        )
    )

    session = gateway.retrieve_checkout_session("cs_test_1")

    assert stub.requests[0].method == "GET"
    assert stub.requests[0].path == "/v1/checkout/sessions/cs_test_1"
    assert (session.status, session.payment_status, session.payment_intent_id) == ("complete", "paid", "pi_1")


def test_expire_checkout_session_posts_with_the_callers_key(stub, gateway):
    stub.reply(body=session_json(status="expired", url=None))

    session = gateway.expire_checkout_session("cs_test_1", idempotency_key="expire:pay-1")

    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions/cs_test_1/expire")
    assert request.headers["idempotency-key"] == "expire:pay-1"
    assert session.status == "expired"
    assert session.url is None


def test_retrieve_payment_intent_expands_the_card_and_reports_the_last_failure(stub, gateway):
    stub.reply(
        body=payment_intent_json(
            status="requires_payment_method",
            latest_charge={"id": "ch_2", "object": "charge"},
            last_payment_error={
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
        )
    )

    info = gateway.retrieve_payment("pi_1")

    [request] = stub.requests
    assert (request.method, request.path) == ("GET", "/v1/payment_intents/pi_1")
    assert request.query == {"expand[0]": "payment_method"}
    assert info.status == "requires_payment_method"
    assert (info.amount, info.currency) == (1299, "EUR")
    assert (info.customer_id, info.payment_method_id, info.latest_charge_id) == ("cus_1", "pm_1", "ch_2")
    assert (info.failure_code, info.decline_code) == ("card_declined", "insufficient_funds")
    assert info.failure_message == "Your card has insufficient funds."
    assert info.metadata == {"renewal": "sub-1"}
    assert info.card is not None
    assert (info.card.brand, info.card.last4, info.card.exp_month, info.card.exp_year) == (
        "visa",
        "4242",
        12,
        2030,
    )


def test_retrieve_setup_intent_returns_the_saved_payment_method(stub, gateway):
    stub.reply(
        body={
            "id": "seti_1",
            "object": "setup_intent",
            "status": "succeeded",
            "customer": "cus_1",
            "payment_method": "pm_9",
            "metadata": {"account": "acc-7"},
        }
    )

    info = gateway.retrieve_payment_method_setup("seti_1")

    assert stub.requests[0].path == "/v1/setup_intents/seti_1"
    assert (info.status, info.customer_id, info.payment_method_id) == ("succeeded", "cus_1", "pm_9")
    assert info.metadata == {"account": "acc-7"}


def test_retrieve_payment_method_refuses_a_method_that_is_not_a_card(stub, gateway):
    stub.reply(body={"id": "pm_sepa", "object": "payment_method", "type": "sepa_debit", "sepa_debit": {}})

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.retrieve_payment_method("pm_sepa")

    assert caught.value.code == "payment_method_not_card"


def test_charge_off_session_confirms_a_saved_card_with_the_callers_key(stub, gateway):
    stub.reply(body=payment_intent_json())

    info = gateway.charge_off_session(off_session_charge())

    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v1/payment_intents")
    assert request.headers["idempotency-key"] == "renewal:sub-1:2030-01-01T00:00:00+00:00"
    assert request.form == {
        "amount": "1299",
        "currency": "eur",
        "customer": "cus_1",
        "payment_method": "pm_1",
        "off_session": "true",
        "confirm": "true",
        "metadata[renewal]": "sub-1",
        "expand[0]": "payment_method",
        "description": "Premium renewal",
    }
    assert info.status == "succeeded"
    assert info.card is not None and info.card.last4 == "4242"


def test_charge_off_session_refuses_an_answer_that_is_not_an_object(stub, gateway):
    stub.reply(body=[payment_intent_json()])

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.charge_off_session(off_session_charge())

    assert caught.value.code == "unexpected_response"


def _proxy_environment(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_a_proxy_the_environment_names_when_the_gateway_is_made_carries_its_requests(stub, monkeypatch):
    # The API's own address is closed: the charge gets through only by way of the proxy (the stub).
    _proxy_environment(monkeypatch, stub.url)
    gateway = StripeGateway(API_KEY, WEBHOOK_SECRET, api_base=closed_address(), max_retries=0, timeout=1)
    stub.reply(body=payment_intent_json())

    info = gateway.charge_off_session(off_session_charge())

    assert info.status == "succeeded"
    assert [request.path for request in stub.requests] == ["/v1/payment_intents"]


def test_the_environment_is_read_once_not_on_every_request(stub, gateway, monkeypatch):
    # Read on every call, as requests does by default, this proxy would refuse the charge.
    _proxy_environment(monkeypatch, closed_address())
    stub.reply(body=payment_intent_json())

    info = gateway.charge_off_session(off_session_charge())

    assert info.status == "succeeded"
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("requires_action", None, AuthenticationRequired),
        ("requires_payment_method", {"code": "card_declined", "decline_code": "do_not_honor"}, CardDeclined),
    ],
)
def test_charge_off_session_raises_when_a_server_answers_200_with_a_failed_intent(
    stub, gateway, status, error, expected
):
    # Stripe answers such charges with a 402; an emulator may answer 200 with the intent.
    stub.reply(body=payment_intent_json(status=status, last_payment_error=error))

    with pytest.raises(expected) as caught:
        gateway.charge_off_session(off_session_charge())

    assert caught.value.payment_intent_id == "pi_1"
    if expected is CardDeclined:
        assert caught.value.decline_code == "do_not_honor"


def test_create_refund_sends_amount_reason_metadata_and_key(stub, gateway):
    stub.reply(
        body={
            "id": "re_1",
            "object": "refund",
            "status": "succeeded",
            "amount": 500,
            "currency": "eur",
            "payment_intent": "pi_1",
            "failure_reason": None,
        }
    )

    refund = gateway.create_refund(
        RefundRequest(
            payment_intent_id="pi_1",
            amount=500,
            reason="requested_by_customer",
            metadata={"refund_id": "ref-1"},
            idempotency_key="refund:ref-1",
        )
    )

    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/v1/refunds")
    assert request.headers["idempotency-key"] == "refund:ref-1"
    assert request.form == {
        "payment_intent": "pi_1",
        "amount": "500",
        "reason": "requested_by_customer",
        "metadata[refund_id]": "ref-1",
    }
    assert (refund.id, refund.status, refund.amount, refund.currency) == ("re_1", "succeeded", 500, "EUR")
    assert refund.payment_intent_id == "pi_1"


def test_refund_of_the_rest_sends_no_amount(stub, gateway):
    stub.reply(
        body={"id": "re_2", "status": "pending", "amount": 799, "currency": "eur", "payment_intent": "pi_1"}
    )

    gateway.create_refund(RefundRequest("pi_1", None, None, {}, "refund:ref-2"))

    assert stub.requests[0].form == {"payment_intent": "pi_1"}


def test_list_events_filters_by_creation_and_maps_each_event(stub, gateway):
    created = datetime(2030, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)
    stub.reply(
        body={
            "object": "list",
            "has_more": True,
            "data": [
                {
                    "id": "evt_2",
                    "object": "event",
                    "type": "payment_intent.succeeded",
                    "created": 1893499300,
                    "data": {"object": payment_intent_json()},
                }
            ],
        }
    )

    page = gateway.list_events(EventQuery(created_after=created, starting_after="evt_1", limit=50))

    [request] = stub.requests
    assert (request.method, request.path) == ("GET", "/v1/events")
    assert request.query == {"limit": "50", "created[gt]": "1893499200", "starting_after": "evt_1"}
    assert page.has_more is True
    [event] = page.events
    assert (event.id, event.type, event.object_id) == ("evt_2", "payment_intent.succeeded", "pi_1")
    assert event.created == datetime.fromtimestamp(1893499300, tz=UTC)
    assert event.object["payment_method"]["card"]["last4"] == "4242"


# --- ledgers (the daily reconciliation report) --------------------------------------------

DAY = CreatedRange(start=datetime(2030, 1, 1, tzinfo=UTC), end=datetime(2030, 1, 2, tzinfo=UTC))


def charge_json(charge_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "status": "succeeded",
        "amount": 39900,
        "amount_refunded": 100,
        "currency": "rub",
        "captured": True,
        "payment_intent": "pi_1",
        "balance_transaction": "txn_1",
        "created": 1893456000,
        **overrides,
    }


def test_list_charges_reads_every_page_of_the_range_and_maps_each_charge(stub, gateway):
    stub.reply(body={"object": "list", "has_more": True, "data": [charge_json("ch_3"), charge_json("ch_2")]})
    stub.reply(body={"object": "list", "has_more": False, "data": [charge_json("ch_1", status="failed")]})

    charges = gateway.list_charges(DAY)

    first, second = stub.requests
    assert (first.method, first.path) == ("GET", "/v1/charges")
    assert first.query == {"created[gte]": "1893456000", "created[lt]": "1893542400", "limit": "100"}
    assert second.query == {**first.query, "starting_after": "ch_2"}
    assert [(c.id, c.status) for c in charges] == [
        ("ch_3", "succeeded"),
        ("ch_2", "succeeded"),
        ("ch_1", "failed"),
    ]
    charge = charges[0]
    assert (charge.amount, charge.amount_refunded, charge.currency, charge.captured) == (
        39900,
        100,
        "RUB",
        True,
    )
    assert (charge.payment_intent_id, charge.balance_transaction_id) == ("pi_1", "txn_1")
    assert charge.created == datetime(2030, 1, 1, tzinfo=UTC)


def test_list_refunds_maps_charge_balance_transaction_and_creation(stub, gateway):
    refund = {
        "id": "re_1",
        "object": "refund",
        "status": "succeeded",
        "amount": 500,
        "currency": "eur",
        "charge": "ch_1",
        "payment_intent": "pi_1",
        "balance_transaction": {"id": "txn_9", "object": "balance_transaction"},
        "created": 1893456001,
    }
    stub.reply(body={"object": "list", "has_more": False, "data": [refund]})

    [info] = gateway.list_refunds(DAY)

    assert stub.requests[0].path == "/v1/refunds"
    assert (info.id, info.amount, info.currency, info.charge_id) == ("re_1", 500, "EUR", "ch_1")
    assert info.balance_transaction_id == "txn_9"
    assert info.created == datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_list_balance_transactions_maps_fees_net_and_source(stub, gateway):
    txn = {
        "id": "txn_1",
        "object": "balance_transaction",
        "type": "charge",
        "amount": 39900,
        "fee": 1187,
        "net": 38713,
        "currency": "rub",
        "source": "ch_1",
        "exchange_rate": None,
        "created": 1893456000,
    }
    stub.reply(body={"object": "list", "has_more": False, "data": [txn]})

    [info] = gateway.list_settlement_lines(DAY)

    assert stub.requests[0].path == "/v1/balance_transactions"
    assert (info.type, info.amount, info.fee, info.net, info.currency) == (
        "charge",
        39900,
        1187,
        38713,
        "RUB",
    )
    assert (info.source_id, info.exchange_rate) == ("ch_1", None)
    assert info.kind == "payment"


@pytest.mark.parametrize(
    ("stripe_type", "kind"),
    [
        ("payment", "payment"),
        ("refund", "refund"),
        ("payment_refund", "refund"),
        ("payout", "payout"),
        ("payout_failure", "payout"),
        ("adjustment", "other"),
    ],
)
def test_ledger_entries_say_what_they_record_in_our_words(stub, gateway, stripe_type, kind):
    txn = {"id": "txn_2", "type": stripe_type, "amount": 100, "fee": 0, "net": 100, "currency": "rub"}
    stub.reply(body={"object": "list", "has_more": False, "data": [{**txn, "created": 1893456000}]})

    [info] = gateway.list_settlement_lines(DAY)

    assert (info.type, info.kind) == (stripe_type, kind)


def test_a_failing_page_is_retried_then_the_listing_goes_on(stub, gateway):
    stub.reply(body={"object": "list", "has_more": True, "data": [charge_json("ch_2")]})
    stub.reply(status=500, body={"error": {"type": "api_error", "message": "boom"}})
    stub.reply(body={"object": "list", "has_more": False, "data": [charge_json("ch_1")]})

    charges = gateway.list_charges(DAY)

    assert [c.id for c in charges] == ["ch_2", "ch_1"]
    assert [r.query.get("starting_after") for r in stub.requests] == [None, "ch_2", "ch_2"]


def test_created_range_refuses_naive_or_empty_ranges():
    with pytest.raises(ValueError, match="timezone-aware"):
        CreatedRange(start=datetime(2030, 1, 1), end=datetime(2030, 1, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="after start"):
        CreatedRange(start=DAY.end, end=DAY.start)


# --- error mapping ------------------------------------------------------------------------


def test_declined_card_maps_to_card_declined_with_decline_code_and_is_not_retried(stub, gateway):
    stub.reply(
        402,
        error_json(
            "Your card has insufficient funds.",
            type="card_error",
            code="card_declined",
            decline_code="insufficient_funds",
            payment_intent={"id": "pi_9", "object": "payment_intent", "status": "requires_payment_method"},
        ),
    )

    with pytest.raises(CardDeclined) as caught:
        gateway.charge_off_session(off_session_charge())

    error = caught.value
    assert (error.code, error.decline_code, error.payment_intent_id) == (
        "card_declined",
        "insufficient_funds",
        "pi_9",
    )
    assert error.kind == "soft"  # dunning may try again
    assert error.retryable is False
    assert error.http_status == 402
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("decline_code", "kind"),
    [
        ("expired_card", "hard"),
        ("stolen_card", "hard"),
        ("do_not_honor", "soft"),
        ("insufficient_funds", "soft"),
    ],
)
def test_the_gateway_says_whether_a_decline_is_worth_retrying(stub, gateway, decline_code, kind):
    stub.reply(
        402,
        error_json("Declined.", type="card_error", code="card_declined", decline_code=decline_code),
    )

    with pytest.raises(CardDeclined) as caught:
        gateway.charge_off_session(off_session_charge())

    assert (caught.value.decline_code, caught.value.kind) == (decline_code, kind)


def test_a_saved_card_stripe_no_longer_has_is_a_hard_decline(stub, gateway):
    stub.reply(
        400,
        error_json("No such PaymentMethod: 'pm_gone'", type="invalid_request_error", code="resource_missing"),
    )

    with pytest.raises(CardDeclined) as caught:
        gateway.charge_off_session(off_session_charge())

    assert (caught.value.code, caught.value.kind) == ("resource_missing", "hard")


def test_authentication_required_maps_to_its_own_error(stub, gateway):
    stub.reply(
        402,
        error_json(
            "Your card was declined. This transaction requires authentication.",
            type="card_error",
            code="authentication_required",
            decline_code="authentication_required",
            payment_intent={"id": "pi_3ds", "object": "payment_intent", "status": "requires_payment_method"},
        ),
    )

    with pytest.raises(AuthenticationRequired) as caught:
        gateway.charge_off_session(off_session_charge())

    assert caught.value.payment_intent_id == "pi_3ds"
    assert len(stub.requests) == 1


def test_server_error_then_success_is_retried_with_the_same_idempotency_key(stub, gateway):
    stub.reply(500, error_json("An unknown error occurred", type="api_error"))
    stub.reply(body=payment_intent_json())

    info = gateway.charge_off_session(off_session_charge())

    assert info.status == "succeeded"
    first, second = stub.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.headers["idempotency-key"] == "renewal:sub-1:2030-01-01T00:00:00+00:00"
    assert first.form == second.form


def test_rate_limit_maps_to_rate_limited_after_retrying_under_the_same_key(stub, gateway):
    for _ in range(3):
        stub.reply(429, error_json("Too many requests", type="invalid_request_error", code="rate_limit"))

    with pytest.raises(RateLimited) as caught:
        gateway.create_customer(CustomerRequest("acc-7", "viewer@example.com", "customer:acc-7"))

    assert caught.value.retryable is True
    assert caught.value.http_status == 429
    assert len(stub.requests) == 3  # the first attempt and max_retries=2 retries
    assert {request.headers["idempotency-key"] for request in stub.requests} == {"customer:acc-7"}


def test_lock_timeout_maps_to_a_temporary_error(stub):
    gateway = make_gateway(stub, max_retries=0)
    stub.reply(429, error_json("This object cannot be accessed right now", code="lock_timeout"))

    with pytest.raises(TemporaryGatewayError) as caught:
        gateway.retrieve_refund("re_1")

    assert caught.value.code == "lock_timeout"


def test_idempotent_request_in_progress_conflict_is_retried(stub, gateway):
    stub.reply(409, error_json("There is currently another in-progress request", type="idempotency_error"))
    stub.reply(body={"id": "cus_1", "object": "customer"})

    assert gateway.create_customer(CustomerRequest("acc-7", "", "customer:acc-7")) == "cus_1"
    assert len(stub.requests) == 2


def test_stripe_should_retry_false_stops_the_retries(stub, gateway):
    stub.reply(
        500,
        error_json("An unknown error occurred", type="api_error"),
        headers={"Stripe-Should-Retry": "false"},
    )

    with pytest.raises(TemporaryGatewayError) as caught:
        gateway.charge_off_session(off_session_charge())

    assert caught.value.retryable is False
    assert len(stub.requests) == 1


def test_read_timeout_maps_to_a_temporary_error_retried_under_the_same_key(stub):
    gateway = make_gateway(stub, timeout=0.2, max_retries=1)
    stub.reply(body=payment_intent_json(), delay=1.0)
    stub.reply(body=payment_intent_json(), delay=1.0)

    with pytest.raises(TemporaryGatewayError) as caught:
        gateway.charge_off_session(off_session_charge())

    assert caught.value.retryable is True
    assert len(stub.requests) == 2
    assert stub.requests[0].headers["idempotency-key"] == stub.requests[1].headers["idempotency-key"]


def closed_address() -> str:
    """Return an address on this machine that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_refused_connection_maps_to_a_temporary_error():
    gateway = StripeGateway(API_KEY, WEBHOOK_SECRET, api_base=closed_address(), max_retries=0, timeout=1)

    with pytest.raises(TemporaryGatewayError) as caught:
        gateway.retrieve_refund("re_1")

    assert caught.value.code == "api_connection_error"


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            400,
            error_json(
                "Refund amount (€20.00) is greater than unrefunded amount on charge (€12.99)",
                type="invalid_request_error",
                param="amount",
            ),
            "invalid_request_error",
        ),
        (
            400,
            error_json(
                "Charge ch_1 has already been refunded.",
                type="invalid_request_error",
                code="charge_already_refunded",
            ),
            "charge_already_refunded",
        ),
        (
            404,
            error_json(
                "No such payment_intent: 'pi_x'", type="invalid_request_error", code="resource_missing"
            ),
            "resource_missing",
        ),
        (
            400,
            error_json(
                "Keys for idempotent requests can only be used with the same parameters",
                type="idempotency_error",
            ),
            "idempotency_error",
        ),
        (401, error_json("Invalid API Key provided", type="invalid_request_error"), "authentication_error"),
        (
            403,
            error_json("The provided key does not have access", type="invalid_request_error"),
            "permission_error",
        ),
    ],
)
def test_request_errors_map_to_permanent_errors_and_are_not_retried(stub, gateway, status, body, code):
    stub.reply(status, body)

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.create_refund(RefundRequest("pi_1", 2000, None, {}, "refund:ref-9"))

    assert caught.value.code == code
    assert caught.value.http_status == status
    assert caught.value.retryable is False
    assert len(stub.requests) == 1


def test_an_endpoint_the_server_lacks_maps_to_a_permanent_error(stub, gateway):
    # What a partial emulator answers: a plain-text 404 rather than Stripe's JSON error.
    stub.reply(404, raw=b"404: Not Found")

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.retrieve_checkout_session("cs_test_1")

    assert caught.value.http_status == 404


def test_an_unreadable_success_response_is_a_permanent_error(stub, gateway):
    stub.reply(body=session_json(status="half-open"))

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.retrieve_checkout_session("cs_test_1")

    assert caught.value.code == "unexpected_response"


@pytest.mark.parametrize(
    ("exc", "expected", "retryable"),
    [
        (stripe.APIConnectionError("reset"), TemporaryGatewayError, True),
        (stripe.APIError("boom", http_status=502), TemporaryGatewayError, True),
        (stripe.APIError("odd", http_status=418), PermanentGatewayError, False),
        (stripe.RateLimitError("slow down", http_status=429), RateLimited, True),
        (
            stripe.InvalidRequestError("bad", "amount", code="parameter_invalid_integer"),
            PermanentGatewayError,
            False,
        ),
        (stripe.IdempotencyError("mismatch"), PermanentGatewayError, False),
        (stripe.AuthenticationError("no key"), PermanentGatewayError, False),
        (stripe.PermissionError("no access"), PermanentGatewayError, False),
        (stripe.CardError("declined", None, "expired_card"), CardDeclined, False),
        (stripe.SignatureVerificationError("bad", "t=1,v1=x"), InvalidWebhookSignature, False),
        (stripe.StripeError("unknown"), PermanentGatewayError, False),
    ],
)
def test_every_sdk_exception_maps_to_a_gateway_error(exc, expected, retryable):
    error = gateway_error_from_stripe(exc)

    assert type(error) is expected
    assert error.retryable is retryable
    assert error.message


# --- retries ------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_ceiling_with_jitter() -> None:
    pauses: list[float] = []
    policy = RetryPolicy(max_retries=4, base_delay=0.1, max_delay=0.3, sleep=pauses.append)
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls <= 4:
            raise TemporaryGatewayError("down")
        return "ok"

    assert policy.run(flaky) == "ok"
    ceilings = [0.1, 0.2, 0.3, 0.3]
    assert len(pauses) == 4
    for pause, ceiling in zip(pauses, ceilings, strict=True):
        assert ceiling / 2 <= pause <= ceiling


def test_a_non_retryable_error_is_raised_at_once() -> None:
    pauses: list[float] = []
    policy = RetryPolicy(max_retries=3, base_delay=0.1, sleep=pauses.append)

    def broken() -> None:
        raise PermanentGatewayError("bad request")

    with pytest.raises(PermanentGatewayError):
        policy.run(broken)
    assert pauses == []


# --- webhooks -----------------------------------------------------------------------------


def event_payload() -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "checkout.session.completed",
            "created": 1893499200,
            "data": {"object": session_json(status="complete", payment_status="paid")},
        }
    ).encode()


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Build a Stripe-Signature header the way Stripe documents it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def test_valid_webhook_returns_the_event(gateway):
    payload = event_payload()

    event = gateway.parse_webhook(payload, sign(payload))

    assert (event.id, event.type, event.object_id) == ("evt_1", "checkout.session.completed", "cs_test_1")
    assert event.created == datetime.fromtimestamp(1893499200, tz=UTC)
    assert event.object["payment_status"] == "paid"


def test_webhook_signed_with_the_old_and_new_secret_is_accepted(gateway):
    # During a secret roll Stripe sends one v1 signature per active secret.
    payload = event_payload()
    header = sign(payload, secret="whsec_old") + "," + sign(payload).split(",")[1]

    assert gateway.parse_webhook(payload, header).id == "evt_1"


def altered(payload: bytes) -> bytes:
    index = payload.index(b"evt_1") + 4
    return payload[:index] + b"2" + payload[index + 1 :]


@pytest.mark.parametrize(
    "make_header_and_body",
    [
        pytest.param(lambda p: ("", p), id="missing"),
        pytest.param(lambda p: ("t=1,v0=abc", p), id="no-v1-signature"),
        pytest.param(lambda p: ("garbage", p), id="malformed"),
        pytest.param(lambda p: (sign(p, secret="whsec_someone_else"), p), id="wrong-secret"),
        pytest.param(lambda p: (sign(p), altered(p)), id="one-byte-altered"),
        pytest.param(lambda p: (sign(p), p[:-1] + b"\xff"), id="not-utf8"),
        pytest.param(lambda p: (sign(p, timestamp=int(time.time()) - 600), p), id="ten-minutes-old"),
    ],
)
def test_bad_webhook_signatures_are_refused(gateway, make_header_and_body):
    header, body = make_header_and_body(event_payload())

    with pytest.raises(InvalidWebhookSignature):
        gateway.parse_webhook(body, header)


def test_a_signed_body_that_is_not_an_event_is_refused(gateway):
    payload = b'{"hello": "world"}'

    with pytest.raises(InvalidWebhookSignature) as caught:
        gateway.parse_webhook(payload, sign(payload))

    assert caught.value.code == "invalid_payload"


def test_without_a_webhook_secret_every_webhook_is_refused(stub):
    gateway = make_gateway(stub, webhook_secret="")
    payload = event_payload()

    with pytest.raises(InvalidWebhookSignature):
        gateway.parse_webhook(payload, sign(payload, secret=""))


# --- values at the boundary ---------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"currency": "eur"},
        {"currency": "EURO"},
        {"expires_at": datetime(2030, 1, 1)},  # naive on purpose
        {"idempotency_key": ""},
        {"amount": 0},
        {"product_name": ""},
    ],
)
def test_checkout_requests_refuse_values_the_domain_must_not_send(overrides):
    with pytest.raises(ValueError):
        checkout_request(**overrides)


def test_event_query_refuses_a_naive_time_and_a_silly_limit():
    with pytest.raises(ValueError):
        EventQuery(created_after=datetime(2030, 1, 1))  # naive on purpose
    with pytest.raises(ValueError):
        EventQuery(limit=101)


def test_gateway_errors_share_one_base():
    for error_type in (
        CardDeclined,
        AuthenticationRequired,
        RateLimited,
        TemporaryGatewayError,
        PermanentGatewayError,
        InvalidWebhookSignature,
    ):
        assert issubclass(error_type, GatewayError)


# --- get_gateway --------------------------------------------------------------------------


@pytest.fixture
def stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = ""
    settings.STRIPE_API_VERSION = ""
    settings.STRIPE_TIMEOUT_SECONDS = 10
    settings.STRIPE_MAX_RETRIES = 2
    settings.BILLING_PRODUCTION = False
    return settings


def test_get_gateway_reuses_one_instance_until_the_settings_change(stripe_settings):
    first = get_gateway()
    assert get_gateway() is first

    stripe_settings.STRIPE_TIMEOUT_SECONDS = 3

    assert get_gateway() is not first


def test_get_gateway_refuses_a_sandbox_in_production(stripe_settings):
    stripe_settings.BILLING_PRODUCTION = True
    stripe_settings.STRIPE_API_BASE = "http://127.0.0.1:8010/sandbox"

    with pytest.raises(ImproperlyConfigured):
        get_gateway()


def test_get_gateway_allows_a_sandbox_outside_production(stripe_settings):
    stripe_settings.STRIPE_API_BASE = "http://127.0.0.1:8010/sandbox"

    assert isinstance(get_gateway(), StripeGateway)


def test_get_gateway_allows_real_stripe_in_production(stripe_settings):
    stripe_settings.BILLING_PRODUCTION = True
    stripe_settings.STRIPE_API_BASE = "https://api.stripe.com"

    assert isinstance(get_gateway(), StripeGateway)


def test_get_gateway_needs_a_secret_key(stripe_settings):
    stripe_settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(ImproperlyConfigured):
        get_gateway()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.stripe.com", True),
        ("https://api.stripe.com/", True),
        ("https://files.stripe.com", True),
        ("http://api.stripe.com", False),
        ("https://api.stripe.com.attacker.test", False),
        ("https://api.stripe.com@attacker.test", False),
        ("https://attacker.test/?next=api.stripe.com", False),
        ("https://notstripe.com", False),
        ("http://localhost:8420", False),
    ],
)
def test_only_https_stripe_hosts_count_as_stripe(url, expected):
    assert is_stripe_api_base(url) is expected


def test_expires_at_is_sent_as_whole_seconds(stub, gateway):
    stub.reply(body=session_json())
    moment = EXPIRES + timedelta(microseconds=900000)

    gateway.create_checkout_session(checkout_request(expires_at=moment))

    assert stub.requests[0].form["expires_at"] == str(int(EXPIRES.timestamp()))
