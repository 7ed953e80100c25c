"""Refunds of succeeded charges, in part or in full."""

from payments.sandbox import objects
from payments.sandbox.context import Ctx
from payments.sandbox.errors import invalid, resource_missing
from payments.sandbox.events import record_event
from payments.sandbox.forms import check_known, choice_param, int_param, metadata_param, str_param

Obj = objects.Obj

_CREATE_PARAMS = (
    "payment_intent",
    "charge",
    "amount",
    "reason",
    "metadata",
    "expand",
    "instructions_email",
    "refund_application_fee",
    "reverse_transfer",
    "origin",
    "currency",
    "customer",
)
REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def create_refund(ctx: Ctx, params: Obj) -> Obj:
    """Refund `amount` (default: what is left) of a succeeded charge."""
    check_known(params, _CREATE_PARAMS)
    charge = _charge_to_refund(ctx, params)
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
    amount = int_param(params, "amount", minimum=1)
    if amount is None:
        amount = remaining
    if amount > remaining:
        currency = charge["currency"]
        raise invalid(
            f"Refund amount ({objects.format_amount(amount, currency)}) is greater than unrefunded amount "
            f"on charge ({objects.format_amount(remaining, currency)})",
            param="amount",
            code="amount_too_large",
        )
    now = ctx.now()
    refund = objects.refund(
        created=now,
        charge=charge,
        amount=amount,
        reason=choice_param(params, "reason", REASONS),
        metadata=metadata_param(params),
    )
    txn = objects.balance_transaction(
        created=now,
        amount=-amount,
        fee=0,
        currency=charge["currency"],
        source=refund["id"],
        kind="refund",
        description="REFUND FOR CHARGE" + (f" ({charge['description']})" if charge["description"] else ""),
    )
    refund["balance_transaction"] = txn["id"]
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    refunds = charge["refunds"]
    refunds["data"] = [refund, *refunds["data"]]
    with ctx.store.transaction():
        ctx.store.insert(txn)
        ctx.store.insert(refund)
        ctx.store.save(charge)
        record_event(ctx, "refund.created", refund)
        record_event(ctx, "charge.refunded", charge)
    return refund


def _charge_to_refund(ctx: Ctx, params: Obj) -> Obj:
    intent_id = str_param(params, "payment_intent")
    charge_id = str_param(params, "charge")
    if intent_id is None and charge_id is None:
        raise invalid(
            "One of the following params should be provided for this request: payment_intent or charge."
        )
    if intent_id is not None:
        intent = ctx.store.get(intent_id, "payment_intent")
        if intent is None:
            raise resource_missing("payment_intent", intent_id, param="payment_intent", status=400)
        if intent["status"] != "succeeded" or intent["latest_charge"] is None:
            raise invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        if charge_id is not None and charge_id != intent["latest_charge"]:
            raise invalid("The charge does not belong to the PaymentIntent you provided.", param="charge")
        charge_id = str(intent["latest_charge"])
    charge = ctx.store.get(charge_id, "charge") if charge_id else None
    if charge is None:
        raise resource_missing("charge", charge_id or "", param="charge", status=400)
    if charge["status"] != "succeeded":
        raise invalid(
            f"Charge {charge_id} did not succeed and cannot be refunded.",
            param="charge",
            code="charge_not_refundable",
        )
    return charge
