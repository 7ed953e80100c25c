"""Builders of Stripe-shaped objects: Stripe's field names, JSON types and defaults.

Every builder returns the full object with the fields a real Stripe object of the
same type carries, null where the sandbox has nothing to say, so code written
against the sandbox reads the same keys it will read in production.
"""

import secrets
import string
from typing import Any

Obj = dict[str, Any]

_ID_ALPHABET = string.ascii_letters + string.digits
ZERO_DECIMAL_CURRENCIES = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)


def new_id(prefix: str, length: int = 24) -> str:
    """Return a random Stripe-style id such as `pi_3Pq...`."""
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def secret_for(object_id: str) -> str:
    """Return a client secret of the shape Stripe gives intents."""
    return f"{object_id}_secret_{new_id('x', 25)[2:]}"


def empty_address() -> Obj:
    """Return an address with every line unknown."""
    return {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}


def list_object(url: str, data: list[Obj], has_more: bool = False) -> Obj:
    """Return a Stripe list envelope."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def customer(
    *,
    created: int,
    email: str | None,
    name: str | None,
    description: str | None,
    phone: str | None,
    metadata: dict[str, str],
) -> Obj:
    """Return a new customer."""
    return {
        "id": new_id("cus", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def payment_method(
    *,
    created: int,
    brand: str,
    funding: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    fingerprint: str,
    email: str | None,
    name: str | None,
) -> Obj:
    """Return a card PaymentMethod, not yet attached to a customer."""
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": empty_address(),
            "email": email,
            "name": name,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US",
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": fingerprint,
            "funding": funding,
            "generated_from": None,
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": created,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def payment_intent(
    *,
    created: int,
    amount: int,
    currency: str,
    customer: str | None,
    description: str | None,
    metadata: dict[str, str],
    setup_future_usage: str | None,
    payment_method: str | None,
    status: str,
    receipt_email: str | None = None,
    statement_descriptor: str | None = None,
) -> Obj:
    """Return a new PaymentIntent."""
    intent_id = new_id("pi")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": secret_for(intent_id),
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": None,
        "source": None,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def setup_intent(
    *, created: int, customer: str | None, description: str | None, metadata: dict[str, str]
) -> Obj:
    """Return a new off-session SetupIntent waiting for a card."""
    intent_id = new_id("seti")
    return {
        "id": intent_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": secret_for(intent_id),
        "created": created,
        "customer": customer,
        "description": description,
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {"mandate_options": None, "network": None, "request_three_d_secure": "automatic"}
        },
        "payment_method_types": ["card"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": "off_session",
    }


def charge(
    *,
    created: int,
    intent: Obj,
    pm: Obj,
    succeeded: bool,
    public_url: str,
    decline_code: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> Obj:
    """Return a charge of `intent` on card `pm`, succeeded or failed."""
    card = pm["card"]
    charge_id = new_id("ch")
    amount = intent["amount"]
    if succeeded:
        outcome = {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": secrets.randbelow(60),
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    else:
        outcome = {
            "advice_code": "try_again_later" if decline_code == "insufficient_funds" else "do_not_try_again",
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "declined_by_network",
            "reason": decline_code,
            "risk_level": "normal",
            "risk_score": secrets.randbelow(60),
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "CINEMA SANDBOX",
        "captured": succeeded,
        "created": created,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": pm["id"],
        "payment_method_details": {
            "card": {
                "amount_authorized": amount if succeeded else None,
                "authorization_code": None,
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "extended_authorization": {"status": "disabled"},
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "incremental_authorization": {"status": "unavailable"},
                "installments": None,
                "last4": card["last4"],
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": card["brand"],
                "network_token": {"used": False},
                "network_transaction_id": None,
                "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                "regulated_status": "unregulated",
                "three_d_secure": None,
                "transaction_link_id": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"{public_url}/receipts/{charge_id}",
        "refunded": False,
        "refunds": list_object(f"/v1/charges/{charge_id}/refunds", []),
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": None,
        "status": "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(*, created: int, charge: Obj, amount: int, reason: str | None, metadata: dict[str, str]) -> Obj:
    """Return a succeeded refund of `amount` on `charge`."""
    return {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {
            "card": {
                "reference": secrets.token_hex(6),
                "reference_status": "available",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def processing_fee(amount: int) -> int:
    """Return Stripe's standard card fee (2.9% + 30 minor units), rounded half up."""
    return (amount * 29 + 500) // 1000 + 30


def balance_transaction(
    *, created: int, amount: int, fee: int, currency: str, source: str, kind: str, description: str | None
) -> Obj:
    """Return the ledger entry a charge (`kind="charge"`) or refund (`kind="refund"`) makes."""
    fee_details = (
        [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else []
    )
    return {
        "id": new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": kind,
        "source": source,
        "status": "available",
        "type": kind,
    }


def balance(*, available: dict[str, int], pending: dict[str, int]) -> Obj:
    """Return the account's Balance from the net amounts per (lower-case) currency.

    Every currency is listed in each list, zero where it has nothing, as Stripe lists the
    account's currencies; the sandbox's money all comes from cards, so `source_types` has the
    card's share only. No Connect platform here: nothing is reserved.
    """
    currencies = sorted(available.keys() | pending.keys())

    def funds(amounts: dict[str, int]) -> list[Obj]:
        return [
            {"amount": amounts.get(code, 0), "currency": code, "source_types": {"card": amounts.get(code, 0)}}
            for code in currencies
        ]

    return {
        "object": "balance",
        "available": funds(available),
        "connect_reserved": [{"amount": 0, "currency": code} for code in currencies],
        "livemode": False,
        "pending": funds(pending),
    }


def event(
    *,
    created: int,
    type_: str,
    data_object: Obj,
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
) -> Obj:
    """Return an event carrying a snapshot of `data_object`."""
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type_,
    }


def checkout_session(
    *,
    created: int,
    mode: str,
    customer: str | None,
    customer_email: str | None,
    client_reference_id: str | None,
    metadata: dict[str, str],
    currency: str | None,
    amount_total: int | None,
    success_url: str | None,
    cancel_url: str | None,
    expires_at: int,
    locale: str | None,
    public_url: str,
) -> Obj:
    """Return a new open hosted Checkout Session."""
    session_id = new_id("cs_test", 58)
    payment = mode == "payment"
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer,
        "customer_account": None,
        "customer_creation": None if customer else "if_required",
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": (
            {
                "enabled": False,
                "invoice_data": {
                    "account_tax_ids": None,
                    "custom_fields": None,
                    "description": None,
                    "footer": None,
                    "issuer": None,
                    "metadata": {},
                    "rendering_options": None,
                },
            }
            if payment
            else None
        ),
        "livemode": False,
        "locale": locale,
        "managed_payments": None,
        "metadata": metadata,
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always" if payment else None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "unpaid" if payment else "no_payment_required",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": ({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0} if payment else None),
        "ui_mode": "hosted",
        "url": f"{public_url}/checkout/{session_id}",
        "wallet_options": None,
    }


def line_item(*, currency: str, unit_amount: int, quantity: int, name: str) -> Obj:
    """Return a Checkout line item as `expand[]=line_items` shows it."""
    amount = unit_amount * quantity
    return {
        "id": new_id("li"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": currency,
        "description": name,
        "price": {
            "id": new_id("price"),
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "currency": currency,
            "livemode": False,
            "metadata": {},
            "product": new_id("prod", 14),
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        },
        "quantity": quantity,
    }


def format_amount(amount: int, currency: str) -> str:
    """Return `amount` minor units as the hosted page shows it, e.g. `4.99 EUR`."""
    code = currency.upper()
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount} {code}"
    return f"{amount // 100}.{amount % 100:02d} {code}"
