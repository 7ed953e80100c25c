"""The YooKassa gateway's tables: decline reasons, statuses, money, errors, request bodies, settings."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from yookassa.domain.models.cancellation_details import CancellationDetailsReasonCode

from payments.gateways.base import RefundRequest
from payments.gateways.errors import PermanentGatewayError, RateLimited, TemporaryGatewayError
from payments.gateways.yookassa import setup
from payments.gateways.yookassa.client import gateway_error, idempotence_key
from payments.gateways.yookassa.mapping import (
    CANCELLATION_REASONS,
    amount_json,
    checkout_from_model,
    decline_kind,
    decline_reason,
    minor_units,
    parse_payment,
    payment_decline,
    payment_from_model,
)
from payments.gateways.yookassa.payloads import ReceiptSettings, checkout_payment_body, refund_body
from payments.tests.yookassa_helpers import checkout_request

# Reasons of products the cinema does not sell through (loans) and the SDK's own placeholder.
_NOT_FOR_CARDS = {"loan_declined", "loan_declined_by_payer", "loan_application_expired", "unknown"}


def _payment(**changes):
    data = {
        "id": "2e5b1c5d-000f-5000-8000-1d3b1a1b1c1d",
        "status": "pending",
        "paid": False,
        "amount": {"value": "399.00", "currency": "RUB"},
        "created_at": "2026-12-06T20:00:00.000Z",
        "metadata": {"checkout_mode": "payment", "customer_id": "ykcus_1", "checkout_id": "7"},
        "confirmation": {
            "type": "redirect",
            "confirmation_url": "https://yoomoney.ru/x?orderId=1",
            "return_url": "https://b/",
        },
        "recipient": {"account_id": "1", "gateway_id": "2"},
        "refundable": False,
        "test": True,
    }
    data.update(changes)
    return parse_payment(data)


def test_every_card_cancellation_reason_of_the_sdk_is_classified():
    documented = {
        value
        for name, value in vars(CancellationDetailsReasonCode).items()
        if name.isupper() and isinstance(value, str)
    }

    assert documented - _NOT_FOR_CARDS == set(CANCELLATION_REASONS)


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("insufficient_funds", "soft"),
        ("general_decline", "soft"),
        ("issuer_unavailable", "soft"),
        ("call_issuer", "soft"),
        ("payment_method_limit_exceeded", "soft"),
        ("internal_timeout", "soft"),
        ("card_expired", "hard"),
        ("permission_revoked", "hard"),
        ("fraud_suspected", "hard"),
        ("payment_method_restricted", "hard"),
        ("country_forbidden", "hard"),
        ("invalid_card_number", "hard"),
        ("a_reason_added_later", "soft"),
        (None, "soft"),
    ],
)
def test_decline_kinds(reason, kind):
    assert decline_kind(reason) == kind


def test_3ds_failure_wants_the_customer_and_our_own_cancels_are_no_decline():
    assert payment_decline("3d_secure_failed") == "authentication_required"
    assert (
        payment_decline("canceled_by_merchant") is None and payment_decline("expired_on_confirmation") is None
    )


def test_decline_reasons_for_the_viewer():
    assert [
        decline_reason(r) for r in ("insufficient_funds", "card_expired", "permission_revoked", "call_issuer")
    ] == ["insufficient_funds", "card_expired", "card_blocked", "other"]


def test_money_goes_out_in_roubles_and_comes_back_in_kopecks():
    assert amount_json(39900, "RUB") == {"value": "399.00", "currency": "RUB"}
    assert amount_json(1, "RUB") == {"value": "0.01", "currency": "RUB"}
    assert minor_units({"value": "399.99", "currency": "RUB"}, "x") == 39999
    with pytest.raises(PermanentGatewayError):
        minor_units({"value": "1.005", "currency": "RUB"}, "x")


@pytest.mark.parametrize(
    ("changes", "page", "paid", "status"),
    [
        ({}, "open", "unpaid", "requires_action"),
        ({"status": "succeeded", "paid": True}, "complete", "paid", "succeeded"),
        (
            {
                "status": "canceled",
                "cancellation_details": {"party": "payment_network", "reason": "card_expired"},
            },
            "expired",
            "unpaid",
            "requires_payment_method",
        ),
        (
            {
                "status": "canceled",
                "cancellation_details": {"party": "yoo_money", "reason": "expired_on_confirmation"},
            },
            "expired",
            "unpaid",
            "canceled",
        ),
    ],
)
def test_a_payment_is_its_checkout_page(changes, page, paid, status):
    model = _payment(**changes)

    session = checkout_from_model(model)

    assert (session.status, session.payment_status) == (page, paid)
    assert payment_from_model(model).status == status
    assert session.metadata == {"checkout_id": "7"} and session.customer_id == "ykcus_1"
    assert (session.url is not None) == (page == "open")


def test_a_long_idempotency_key_is_hashed_to_yookassas_64_characters():
    long_key = "renewal:" + "x" * 100

    assert idempotence_key("checkout:1") == "checkout:1"
    assert len(idempotence_key(long_key)) == 64 and idempotence_key(long_key) == idempotence_key(long_key)
    with pytest.raises(ValueError):
        idempotence_key("")


@pytest.mark.parametrize(
    ("status", "error", "code", "retryable"),
    [
        (400, PermanentGatewayError, "invalid_request", False),
        (401, PermanentGatewayError, "invalid_credentials", False),
        (403, PermanentGatewayError, "forbidden", False),
        (404, PermanentGatewayError, "not_found", False),
        (429, RateLimited, "too_many_requests", True),
        (500, TemporaryGatewayError, "internal_server_error", True),
        (202, TemporaryGatewayError, "internal_server_error", True),
    ],
)
def test_error_answers_map_to_gateway_errors(status, error, code, retryable):
    body = {"type": "error", "code": code} if status != 202 else {}

    mapped = gateway_error(status, body)

    assert type(mapped) is error and mapped.code == code and mapped.retryable is retryable


def test_the_receipt_has_one_item_with_the_configured_tax_fields():
    settings = ReceiptSettings(vat_code=1, payment_subject="service", payment_mode="full_payment")

    body = checkout_payment_body(checkout_request(), settings)
    refund = refund_body(
        RefundRequest(
            payment_intent_id="p",
            amount=100,
            reason=None,
            metadata={},
            idempotency_key="r",
            receipt_email="v@example.com",
            receipt_item_name="Monthly",
        ),
        amount=100,
        currency="RUB",
        settings=settings,
    )

    assert body["receipt"] == {
        "customer": {"email": "viewer@example.com"},
        "items": [
            {
                "description": "Monthly",
                "quantity": "1.00",
                "amount": {"value": "399.00", "currency": "RUB"},
                "vat_code": 1,
                "payment_subject": "service",
                "payment_mode": "full_payment",
            }
        ],
    }
    assert body["capture"] is True and body["save_payment_method"] is True
    assert refund["receipt"]["items"][0]["amount"] == {"value": "1.00", "currency": "RUB"}


def test_a_card_check_is_a_held_rouble_that_saves_the_card():
    body = checkout_payment_body(checkout_request(mode="setup"), ReceiptSettings())

    assert body["amount"] == {"value": "1.00", "currency": "RUB"} and body["capture"] is False
    assert body["save_payment_method"] is True and body["metadata"]["checkout_mode"] == "setup"


def test_a_receipt_without_an_email_is_refused_before_any_call():
    request = checkout_request()
    object.__setattr__(request, "receipt_email", "")

    with pytest.raises(PermanentGatewayError) as refused:
        checkout_payment_body(request, ReceiptSettings())

    assert refused.value.code == "receipt_email_missing"
    assert "receipt" not in checkout_payment_body(request, ReceiptSettings(enabled=False))


def test_the_gateway_is_built_from_the_settings(settings):
    settings.YOOKASSA_SHOP_ID = "100500"
    settings.YOOKASSA_SECRET_KEY = "test_key"
    settings.YOOKASSA_RATE_LIMIT_PER_SECOND = 0

    gateway = setup.gateway_from_settings()

    assert type(gateway).__name__ == "YooKassaGateway"


def test_production_refuses_a_sandbox_address_and_missing_keys(settings):
    settings.YOOKASSA_SHOP_ID = "100500"
    settings.YOOKASSA_SECRET_KEY = "live_key"
    settings.YOOKASSA_API_BASE = "http://127.0.0.1:12112/v3"
    settings.BILLING_PRODUCTION = True

    with pytest.raises(ImproperlyConfigured):
        setup.gateway_from_settings()
    settings.YOOKASSA_SECRET_KEY = ""
    with pytest.raises(ImproperlyConfigured):
        setup.gateway_from_settings()
