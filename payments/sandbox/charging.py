"""Attempting a PaymentIntent's payment with a card: charges, ledger entries, declines.

Checkout (on-session) and off-session PaymentIntents both pay through here, so a
test card behaves the same whichever way it is charged.
"""

from dataclasses import dataclass

from payments.sandbox import cards, objects
from payments.sandbox.context import Ctx
from payments.sandbox.errors import doc_url
from payments.sandbox.events import record_event

Obj = objects.Obj

AUTHENTICATION_FAILED_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)


@dataclass
class Attempt:
    """How a payment attempt ended: succeeded, declined (with `error`) or waiting for 3D Secure."""

    status: str
    intent: Obj
    error: Obj | None = None


def outcome_for(ctx: Ctx, pm: Obj, *, off_session: bool) -> str:
    """Return what charging this card does, from the test card it was made from."""
    test_card = cards.card_by_name(ctx.store.internal(pm["id"])["test_card"])
    return test_card.off_session if off_session else test_card.on_session


def attempt_payment(ctx: Ctx, intent: Obj, pm: Obj, *, off_session: bool) -> Attempt:
    """Try to pay `intent` with `pm`, recording the charge and events Stripe would."""
    outcome = outcome_for(ctx, pm, off_session=off_session)
    if outcome == cards.SUCCEED:
        return Attempt("succeeded", succeed_payment(ctx, intent, pm))
    if outcome == cards.AUTHENTICATE:
        return Attempt("requires_action", require_action(ctx, intent, pm))
    return decline_payment(ctx, intent, pm, outcome)


def succeed_payment(ctx: Ctx, intent: Obj, pm: Obj) -> Obj:
    """Charge the card: a succeeded charge, its ledger entry, and a succeeded intent."""
    now = ctx.now()
    charge = objects.charge(
        created=now, intent=intent, pm=pm, succeeded=True, public_url=ctx.config.public_url
    )
    txn = objects.balance_transaction(
        created=now,
        amount=charge["amount"],
        fee=objects.processing_fee(charge["amount"]),
        currency=charge["currency"],
        source=charge["id"],
        kind="charge",
        description=charge["description"],
    )
    charge["balance_transaction"] = txn["id"]
    intent.update(
        status="succeeded",
        amount_received=intent["amount"],
        latest_charge=charge["id"],
        payment_method=pm["id"],
        last_payment_error=None,
        next_action=None,
    )
    with ctx.store.transaction():
        ctx.store.insert(txn)
        ctx.store.insert(charge)
        ctx.store.save(intent)
        record_event(ctx, "charge.succeeded", charge)
        record_event(ctx, "payment_intent.succeeded", intent)
    return intent


def require_action(ctx: Ctx, intent: Obj, pm: Obj) -> Obj:
    """Put the intent on hold until the viewer completes 3D Secure on the sandbox's page."""
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
    with ctx.store.transaction():
        ctx.store.save(intent)
        record_event(ctx, "payment_intent.requires_action", intent)
    return intent


def decline_payment(ctx: Ctx, intent: Obj, pm: Obj, outcome: str) -> Attempt:
    """Record a declined attempt: a failed charge and an intent that needs another card."""
    code, message = cards.DECLINES[outcome]
    charge = objects.charge(
        created=ctx.now(),
        intent=intent,
        pm=pm,
        succeeded=False,
        public_url=ctx.config.public_url,
        decline_code=outcome,
        failure_code=code,
        failure_message=message,
    )
    error = {
        "charge": charge["id"],
        "code": code,
        "decline_code": outcome,
        "doc_url": doc_url(code),
        "message": message,
        "payment_method": pm,
        "type": "card_error",
    }
    intent.update(
        status="requires_payment_method",
        latest_charge=charge["id"],
        last_payment_error=error,
        # Stripe clears it: the failed card stays reachable through last_payment_error.
        payment_method=None,
        next_action=None,
    )
    with ctx.store.transaction():
        ctx.store.insert(charge)
        ctx.store.save(intent)
        record_event(ctx, "charge.failed", charge)
        record_event(ctx, "payment_intent.payment_failed", intent)
    return Attempt("declined", intent, error)


def fail_authentication(ctx: Ctx, intent: Obj, pm: Obj) -> Attempt:
    """Record that the viewer failed 3D Secure."""
    error = {
        "code": "payment_intent_authentication_failure",
        "doc_url": doc_url("payment_intent_authentication_failure"),
        "message": AUTHENTICATION_FAILED_MESSAGE,
        "payment_method": pm,
        "type": "invalid_request_error",
    }
    intent.update(
        status="requires_payment_method", last_payment_error=error, payment_method=None, next_action=None
    )
    with ctx.store.transaction():
        ctx.store.save(intent)
        record_event(ctx, "payment_intent.payment_failed", intent)
    return Attempt("declined", intent, error)


def cancel_intent(ctx: Ctx, intent: Obj, reason: str) -> Obj:
    """Cancel an unpaid PaymentIntent or SetupIntent."""
    intent.update(status="canceled", cancellation_reason=reason, next_action=None)
    if intent["object"] == "payment_intent":
        intent["canceled_at"] = ctx.now()
    with ctx.store.transaction():
        ctx.store.save(intent)
        record_event(ctx, f"{intent['object']}.canceled", intent)
    return intent
