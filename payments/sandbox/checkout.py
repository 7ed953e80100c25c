"""Hosted Checkout Sessions: creation, paying with a test card, 3D Secure, expiry.

The HTML page and the control API (`/_sandbox/checkout/{id}/pay`) both call
`pay_session` and `authenticate`, so a test that skips the form exercises the same
code as a viewer clicking "Pay".
"""

import time
from dataclasses import dataclass

from payments.sandbox import cards, objects
from payments.sandbox.charging import (
    attempt_payment,
    cancel_intent,
    fail_authentication,
    succeed_payment,
)
from payments.sandbox.context import Ctx
from payments.sandbox.customers import attach_payment_method, new_customer
from payments.sandbox.errors import doc_url, invalid, resource_missing
from payments.sandbox.events import record_event
from payments.sandbox.forms import (
    check_known,
    choice_param,
    currency_param,
    hash_param,
    int_param,
    list_param,
    metadata_param,
    str_param,
)

Obj = objects.Obj

_CREATE_PARAMS = (
    "mode",
    "customer",
    "customer_email",
    "client_reference_id",
    "metadata",
    "line_items",
    "payment_intent_data",
    "setup_intent_data",
    "success_url",
    "cancel_url",
    "expires_at",
    "locale",
    "expand",
    "payment_method_types",
    "currency",
    "submit_type",
    "ui_mode",
    "allow_promotion_codes",
    "billing_address_collection",
    "customer_creation",
    "payment_method_collection",
    "consent_collection",
    "custom_text",
    "phone_number_collection",
    "automatic_tax",
    "tax_id_collection",
    "invoice_creation",
    "payment_method_options",
    "saved_payment_method_options",
    "customer_update",
)
_LINE_ITEM_PARAMS = (
    "price_data",
    "quantity",
    "price",
    "adjustable_quantity",
    "tax_rates",
    "dynamic_tax_rates",
)
_PRICE_DATA_PARAMS = ("currency", "unit_amount", "unit_amount_decimal", "product_data", "tax_behavior")
_PRODUCT_DATA_PARAMS = ("name", "description", "images", "metadata", "tax_code", "unit_label")
_PI_DATA_PARAMS = (
    "setup_future_usage",
    "metadata",
    "description",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "capture_method",
    "transfer_group",
    "shipping",
)
_SI_DATA_PARAMS = ("metadata", "description", "on_behalf_of")
_MIN_LIFETIME = 30 * 60
_MAX_LIFETIME = 24 * 60 * 60
# Clients compute expires_at from their own clock and round it down; a minute's slack keeps
# "exactly 30 minutes from now" from being refused for a second of transit.
_CLOCK_SLACK = 60


def create_session(ctx: Ctx, params: Obj) -> Obj:
    """Create an open Checkout Session from `POST /v1/checkout/sessions` parameters."""
    check_known(params, _CREATE_PARAMS)
    mode = str_param(params, "mode", required=True)
    if mode == "subscription":
        raise invalid("The sandbox supports mode=payment and mode=setup only.", param="mode")
    if mode not in ("payment", "setup"):
        raise invalid("Invalid mode: must be one of payment, setup, or subscription", param="mode")
    customer_id = str_param(params, "customer")
    customer_email = str_param(params, "customer_email")
    if customer_id and customer_email:
        raise invalid("You may only specify one of these parameters: customer, customer_email.")
    if customer_id is not None and ctx.store.get(customer_id, "customer") is None:
        raise resource_missing("customer", customer_id, param="customer", status=400)
    if (ui_mode := str_param(params, "ui_mode")) not in (None, "hosted", "hosted_page"):
        raise invalid(f"The sandbox serves hosted Checkout only (ui_mode={ui_mode}).", param="ui_mode")
    now, wall = ctx.now(), ctx.wall_now()
    expires_at = int_param(params, "expires_at")
    if expires_at is None:
        expires_at = wall + _MAX_LIFETIME
    elif not wall + _MIN_LIFETIME - _CLOCK_SLACK <= expires_at <= wall + _MAX_LIFETIME + _CLOCK_SLACK:
        raise invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
            param="expires_at",
        )
    pi_data = hash_param(params, "payment_intent_data")
    si_data = hash_param(params, "setup_intent_data")
    check_known(pi_data, _PI_DATA_PARAMS, prefix="payment_intent_data")
    check_known(si_data, _SI_DATA_PARAMS, prefix="setup_intent_data")
    internal: Obj = {"payment_intent_data": {}, "setup_intent_data": {}, "line_items": []}
    if mode == "payment":
        items = _line_items(params)
        currency: str | None = items[0]["currency"]
        amount_total: int | None = sum(item["amount_total"] for item in items)
        if amount_total is not None and amount_total < 1:
            raise invalid(
                "The Checkout Session's total amount due must be greater than zero.", param="line_items"
            )
        if si_data:
            raise invalid("You can only pass setup_intent_data in setup mode.", param="setup_intent_data")
        internal["line_items"] = items
        internal["payment_intent_data"] = {
            "setup_future_usage": choice_param(
                pi_data,
                "setup_future_usage",
                ("off_session", "on_session"),
                label="payment_intent_data[setup_future_usage]",
            ),
            "metadata": metadata_param(pi_data, label="payment_intent_data[metadata]"),
            "description": str_param(pi_data, "description"),
            "receipt_email": str_param(pi_data, "receipt_email"),
            "statement_descriptor": str_param(pi_data, "statement_descriptor"),
        }
    else:
        if params.get("line_items"):
            raise invalid("You cannot pass `line_items` in `setup` mode.", param="line_items")
        if pi_data:
            raise invalid(
                "You can only pass payment_intent_data in payment mode.", param="payment_intent_data"
            )
        currency = currency_param(params, "currency")
        amount_total = None
        internal["setup_intent_data"] = {
            "metadata": metadata_param(si_data, label="setup_intent_data[metadata]"),
            "description": str_param(si_data, "description"),
        }
    session = objects.checkout_session(
        created=now,
        mode=mode,
        customer=customer_id,
        customer_email=customer_email,
        client_reference_id=str_param(params, "client_reference_id"),
        metadata=metadata_param(params),
        currency=currency,
        amount_total=amount_total,
        success_url=str_param(params, "success_url"),
        cancel_url=str_param(params, "cancel_url"),
        expires_at=expires_at,
        locale=str_param(params, "locale"),
        public_url=ctx.config.public_url,
    )
    ctx.store.insert(session, internal)
    return session


def _line_items(params: Obj) -> list[Obj]:
    raw_items = list_param(params, "line_items")
    if not raw_items:
        raise invalid("line_items is required in payment mode.", param="line_items", code="parameter_missing")
    items: list[Obj] = []
    for index, raw in enumerate(raw_items):
        label = f"line_items[{index}]"
        if not isinstance(raw, dict):
            raise invalid(f"Invalid hash: {label}", param=label)
        check_known(raw, _LINE_ITEM_PARAMS, prefix=label)
        if "price" in raw:
            raise invalid("The sandbox has no Price catalogue: pass price_data.", param=f"{label}[price]")
        price_data = hash_param(raw, "price_data", label=f"{label}[price_data]")
        if not price_data:
            raise invalid(
                f"Missing required param: {label}[price_data].",
                param=f"{label}[price_data]",
                code="parameter_missing",
            )
        check_known(price_data, _PRICE_DATA_PARAMS, prefix=f"{label}[price_data]")
        product_data = hash_param(price_data, "product_data", label=f"{label}[price_data][product_data]")
        check_known(product_data, _PRODUCT_DATA_PARAMS, prefix=f"{label}[price_data][product_data]")
        currency = currency_param(
            price_data, "currency", required=True, label=f"{label}[price_data][currency]"
        )
        unit_amount = int_param(
            price_data, "unit_amount", required=True, minimum=0, label=f"{label}[price_data][unit_amount]"
        )
        name = str_param(
            product_data, "name", required=True, label=f"{label}[price_data][product_data][name]"
        )
        quantity = int_param(raw, "quantity", required=True, minimum=1, label=f"{label}[quantity]")
        if currency is None or unit_amount is None or name is None or quantity is None:
            raise invalid(f"Invalid line item: {label}", param=label)  # the readers above already refused
        if items and currency != items[0]["currency"]:
            raise invalid("All line items must share one currency.", param=f"{label}[price_data][currency]")
        items.append(
            objects.line_item(currency=currency, unit_amount=unit_amount, quantity=quantity, name=name)
        )
    return items


def get_session(ctx: Ctx, session_id: str) -> Obj:
    """Return a session, first expiring it if its time is up."""
    session = ctx.store.get(session_id, "checkout.session")
    if session is None:
        raise resource_missing("checkout.session", session_id)
    if session["status"] == "open" and session["expires_at"] <= ctx.wall_now():
        session = expire(ctx, session)
    return session


def line_items_of(ctx: Ctx, session_id: str) -> Obj:
    """Return a session's line items as the `line_items` list object."""
    items: list[Obj] = ctx.store.internal(session_id).get("line_items", [])
    return objects.list_object(f"/v1/checkout/sessions/{session_id}/line_items", items)


def expire_session(ctx: Ctx, session_id: str) -> Obj:
    """Expire an open session at the merchant's request."""
    session = get_session(ctx, session_id)
    if session["status"] != "open":
        raise invalid(
            f'Only Checkout Sessions with a status in ["open"] can be expired. '
            f"This Checkout Session has a status of {session['status']}."
        )
    return expire(ctx, session)


def expire(ctx: Ctx, session: Obj) -> Obj:
    """Close an open session and cancel the intent it started."""
    with ctx.store.transaction():
        for field_name in ("payment_intent", "setup_intent"):
            intent_id = session[field_name]
            intent = ctx.store.get(intent_id) if intent_id else None
            if intent is not None and intent["status"] not in ("succeeded", "canceled"):
                cancel_intent(ctx, intent, "abandoned")
        session.update(status="expired", url=None)
        ctx.store.save(session)
        record_event(ctx, "checkout.session.expired", session)
    return session


def expire_due_sessions(ctx: Ctx) -> int:
    """Expire every open session whose `expires_at` has passed; return how many."""
    now = ctx.wall_now()
    expired = 0
    with ctx.store.transaction():
        for session in ctx.store.find("checkout.session", "status", "open"):
            if session["expires_at"] <= now:
                expire(ctx, session)
                expired += 1
    return expired


@dataclass
class PayOutcome:
    """What a viewer sees after submitting a card or finishing 3D Secure."""

    status: str  # succeeded | declined | requires_action | invalid | unavailable
    session: Obj
    message: str | None = None
    error: Obj | None = None
    redirect_url: str | None = None
    intent: Obj | None = None


def pay_session(ctx: Ctx, session_id: str, *, card_number: str, exp: str, cvc: str) -> PayOutcome:
    """Pay (or, in setup mode, save) a card on a session, as the hosted page's "Pay" does."""
    with ctx.store.transaction():
        session = get_session(ctx, session_id)
        if session["status"] != "open":
            return PayOutcome("unavailable", session, message=unavailable_message(session))
        wall = time.gmtime(ctx.now())
        try:
            card = cards.read_card(card_number, exp, cvc, now_year=wall.tm_year, now_month=wall.tm_mon)
        except cards.CardInputError as exc:
            # The card form refuses it before anything reaches the card network: no attempt, no event.
            return PayOutcome(
                "invalid",
                session,
                message=exc.message,
                error={
                    "type": "card_error",
                    "code": exc.code,
                    "param": exc.param,
                    "message": exc.message,
                    "doc_url": doc_url(exc.code),
                },
            )
        pm = _new_card(ctx, session, card)
        intent = _intent_for(ctx, session)
        if session["mode"] == "payment":
            attempt = attempt_payment(ctx, intent, pm, off_session=False)
            if attempt.status == "succeeded":
                return _complete_payment(ctx, session, attempt.intent, pm)
            if attempt.status == "requires_action":
                return PayOutcome(
                    "requires_action",
                    session,
                    intent=attempt.intent,
                    redirect_url=attempt.intent["next_action"]["redirect_to_url"]["url"],
                )
            return _declined(session, attempt.intent, attempt.error)
        return _setup_with(ctx, session, intent, pm)


def authenticate(ctx: Ctx, intent_id: str, *, succeed: bool) -> PayOutcome | None:
    """Complete or fail the 3D Secure step of a session's intent, as the buttons on its page do.

    Return None when the intent belongs to no session (a server-side PaymentIntent);
    the caller then uses `authenticate_intent`.
    """
    with ctx.store.transaction():
        sessions = ctx.store.find("checkout.session", "payment_intent", intent_id) or ctx.store.find(
            "checkout.session", "setup_intent", intent_id
        )
        if not sessions:
            return None
        session = get_session(ctx, sessions[0]["id"])
        if session["status"] != "open":
            return PayOutcome("unavailable", session, message=unavailable_message(session))
        intent = ctx.store.get(intent_id)
        if intent is None or intent["status"] != "requires_action":
            return PayOutcome("invalid", session, message="There is no payment waiting for authentication.")
        pm = ctx.store.get(intent["payment_method"], "payment_method")
        if pm is None:
            return PayOutcome("invalid", session, message="There is no payment waiting for authentication.")
        if session["mode"] == "payment":
            if succeed:
                return _complete_payment(ctx, session, succeed_payment(ctx, intent, pm), pm)
            attempt = fail_authentication(ctx, intent, pm)
            return _declined(session, attempt.intent, attempt.error)
        if succeed:
            return _complete_setup(ctx, session, intent, pm)
        return _setup_failed(ctx, session, intent, pm, _setup_authentication_error(pm))


def authenticate_intent(ctx: Ctx, intent_id: str, *, succeed: bool) -> Obj | None:
    """Complete or fail 3D Secure for a server-side PaymentIntent; None when nothing waits."""
    with ctx.store.transaction():
        intent = ctx.store.get(intent_id, "payment_intent")
        if intent is None or intent["status"] != "requires_action":
            return None
        pm = ctx.store.get(intent["payment_method"], "payment_method")
        if pm is None:
            return None
        if succeed:
            return succeed_payment(ctx, intent, pm)
        return fail_authentication(ctx, intent, pm).intent


def unavailable_message(session: Obj) -> str:
    """Return why a session can no longer be paid."""
    if session["status"] == "complete":
        return "This Checkout Session is already complete."
    return "This Checkout Session has expired."


def _new_card(ctx: Ctx, session: Obj, card: cards.CardDetails) -> Obj:
    email = session["customer_email"]
    if session["customer"]:
        customer = ctx.store.get(session["customer"], "customer")
        email = customer["email"] if customer else email
    pm = objects.payment_method(
        created=ctx.now(),
        brand=card.test_card.brand,
        funding=card.test_card.funding,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        fingerprint=card.fingerprint,
        email=email,
        name=None,
    )
    ctx.store.insert(pm, {"test_card": card.test_card.name})
    return pm


def _intent_for(ctx: Ctx, session: Obj) -> Obj:
    """Return the session's intent, creating it on the first attempt as Stripe does."""
    field_name = "payment_intent" if session["mode"] == "payment" else "setup_intent"
    if session[field_name]:
        intent = ctx.store.get(session[field_name])
        if intent is not None:
            return intent
    internal = ctx.store.internal(session["id"])
    if session["mode"] == "payment":
        data = internal["payment_intent_data"]
        intent = objects.payment_intent(
            created=ctx.now(),
            amount=session["amount_total"],
            currency=session["currency"],
            customer=session["customer"],
            description=data["description"],
            metadata=data["metadata"],
            setup_future_usage=data["setup_future_usage"],
            payment_method=None,
            status="requires_payment_method",
            receipt_email=data["receipt_email"],
            statement_descriptor=data["statement_descriptor"],
        )
    else:
        data = internal["setup_intent_data"]
        intent = objects.setup_intent(
            created=ctx.now(),
            customer=session["customer"],
            description=data["description"],
            metadata=data["metadata"],
        )
    session[field_name] = intent["id"]
    ctx.store.insert(intent)
    ctx.store.save(session)
    record_event(ctx, f"{intent['object']}.created", intent)
    return intent


def _customer_for(ctx: Ctx, session: Obj) -> str:
    """Return the session's customer, creating one when a card must be saved without one."""
    if session["customer"]:
        return str(session["customer"])
    customer = new_customer(ctx, email=session["customer_email"])
    session["customer"] = customer["id"]
    return str(customer["id"])


def _complete_payment(ctx: Ctx, session: Obj, intent: Obj, pm: Obj) -> PayOutcome:
    if intent["setup_future_usage"]:
        customer_id = _customer_for(ctx, session)
        attach_payment_method(ctx, pm, customer_id)
        if intent["customer"] != customer_id:
            intent["customer"] = customer_id
            ctx.store.save(intent)
    return _complete(ctx, session, intent, payment_status="paid")


def _complete(ctx: Ctx, session: Obj, intent: Obj, *, payment_status: str) -> PayOutcome:
    customer = ctx.store.get(session["customer"], "customer") if session["customer"] else None
    session.update(
        status="complete",
        payment_status=payment_status,
        customer_details={
            "address": None,
            "business_name": None,
            "email": customer["email"] if customer else session["customer_email"],
            "individual_name": None,
            "name": customer["name"] if customer else None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        url=None,
    )
    ctx.store.save(session)
    record_event(ctx, "checkout.session.completed", session)
    redirect = session["success_url"]
    if redirect:
        redirect = redirect.replace("{CHECKOUT_SESSION_ID}", session["id"])
    return PayOutcome("succeeded", session, intent=intent, redirect_url=redirect)


def _declined(session: Obj, intent: Obj, error: Obj | None) -> PayOutcome:
    message = (error or {}).get("message") or "Your card was declined."
    if str((error or {}).get("code")).endswith("_authentication_failure"):
        # What Checkout shows the viewer, rather than the developer-facing API message.
        message = "We are unable to authenticate your payment method. Please choose a different payment method and try again."
    return PayOutcome("declined", session, message=message, error=error, intent=intent)


def _setup_with(ctx: Ctx, session: Obj, intent: Obj, pm: Obj) -> PayOutcome:
    outcome = cards.card_by_name(ctx.store.internal(pm["id"])["test_card"]).on_session
    if outcome == cards.SUCCEED:
        return _complete_setup(ctx, session, intent, pm)
    if outcome == cards.AUTHENTICATE:
        intent.update(
            status="requires_action",
            payment_method=pm["id"],
            next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "return_url": None,
                    "url": f"{ctx.config.public_url}/authenticate/{intent['id']}",
                },
            },
        )
        ctx.store.save(intent)
        record_event(ctx, "setup_intent.requires_action", intent)
        return PayOutcome(
            "requires_action",
            session,
            intent=intent,
            redirect_url=intent["next_action"]["redirect_to_url"]["url"],
        )
    code, message = cards.DECLINES[outcome]
    error = {
        "code": code,
        "decline_code": outcome,
        "doc_url": doc_url(code),
        "message": message,
        "payment_method": pm,
        "type": "card_error",
    }
    return _setup_failed(ctx, session, intent, pm, error)


def _complete_setup(ctx: Ctx, session: Obj, intent: Obj, pm: Obj) -> PayOutcome:
    customer_id = _customer_for(ctx, session)
    attach_payment_method(ctx, pm, customer_id)
    intent.update(
        status="succeeded",
        payment_method=pm["id"],
        customer=customer_id,
        last_setup_error=None,
        next_action=None,
    )
    ctx.store.save(intent)
    record_event(ctx, "setup_intent.succeeded", intent)
    return _complete(ctx, session, intent, payment_status="no_payment_required")


def _setup_failed(ctx: Ctx, session: Obj, intent: Obj, pm: Obj, error: Obj) -> PayOutcome:
    intent.update(
        status="requires_payment_method", payment_method=None, last_setup_error=error, next_action=None
    )
    ctx.store.save(intent)
    record_event(ctx, "setup_intent.setup_failed", intent)
    return _declined(session, intent, error)


def _setup_authentication_error(pm: Obj) -> Obj:
    code = "setup_intent_authentication_failure"
    return {
        "code": code,
        "doc_url": doc_url(code),
        "message": "The latest attempt to set up the payment method has failed because authentication failed.",
        "payment_method": pm,
        "type": "invalid_request_error",
    }
