"""Server-side PaymentIntents: charging a saved card off-session."""

from payments.sandbox import objects
from payments.sandbox.charging import attempt_payment
from payments.sandbox.context import Ctx
from payments.sandbox.errors import StripeError, invalid, missing_param, resource_missing
from payments.sandbox.events import record_event
from payments.sandbox.forms import (
    bool_param,
    check_known,
    choice_param,
    currency_param,
    int_param,
    metadata_param,
    str_param,
)

Obj = objects.Obj

_CREATE_PARAMS = (
    "amount",
    "currency",
    "customer",
    "payment_method",
    "off_session",
    "confirm",
    "description",
    "metadata",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "setup_future_usage",
    "payment_method_types",
    "expand",
    "error_on_requires_action",
    "capture_method",
    "confirmation_method",
    "return_url",
    "use_stripe_sdk",
    "mandate",
    "payment_method_options",
    "transfer_group",
)


def create_payment_intent(ctx: Ctx, params: Obj) -> tuple[int, Obj]:
    """Create (and with `confirm=true`, pay) a PaymentIntent; return the status and body to answer."""
    check_known(params, _CREATE_PARAMS)
    amount = int_param(params, "amount", required=True, minimum=1)
    currency = currency_param(params, "currency", required=True)
    if amount is None or currency is None:  # required=True has refused these already
        raise missing_param("amount" if amount is None else "currency")
    customer_id = str_param(params, "customer")
    pm_id = str_param(params, "payment_method")
    confirm = bool_param(params, "confirm") or False
    off_session = bool_param(params, "off_session") or False
    if choice_param(params, "capture_method", ("automatic", "automatic_async", "manual")) == "manual":
        raise invalid(
            "The sandbox only captures automatically (capture_method=manual is not supported).",
            param="capture_method",
        )
    if off_session and not confirm:
        raise invalid("You can only pass off_session when confirm is true.", param="off_session")
    if customer_id is not None and ctx.store.get(customer_id, "customer") is None:
        raise resource_missing("customer", customer_id, param="customer", status=400)
    pm = None
    if pm_id is not None:
        pm = ctx.store.get(pm_id, "payment_method")
        if pm is None:
            raise resource_missing("PaymentMethod", pm_id, param="payment_method", status=400)
        _check_owner(pm, customer_id)
    if confirm and pm is None:
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update the PaymentIntent with a payment method and then confirm it again.",
            param="payment_method",
            code="payment_intent_unexpected_state",
        )
    intent = objects.payment_intent(
        created=ctx.now(),
        amount=amount,
        currency=currency,
        customer=customer_id,
        description=str_param(params, "description"),
        metadata=metadata_param(params),
        setup_future_usage=choice_param(params, "setup_future_usage", ("off_session", "on_session")),
        payment_method=pm_id,
        status="requires_confirmation" if pm is not None else "requires_payment_method",
        receipt_email=str_param(params, "receipt_email"),
        statement_descriptor=str_param(params, "statement_descriptor"),
    )
    with ctx.store.transaction():
        ctx.store.insert(intent)
        record_event(ctx, "payment_intent.created", intent)
        if not confirm or pm is None:
            return 200, intent
        attempt = attempt_payment(ctx, intent, pm, off_session=off_session)
    if attempt.error is None:
        return 200, attempt.intent
    # Stripe answers a declined confirmation with 402 and the whole intent in the error.
    error = StripeError(
        402,
        attempt.error["message"],
        type_=attempt.error["type"],
        code=attempt.error["code"],
        extra={key: value for key, value in attempt.error.items() if key not in ("message", "type", "code")}
        | {"payment_intent": attempt.intent},
    )
    return 402, error.body()


def _check_owner(pm: Obj, customer_id: str | None) -> None:
    owner = pm["customer"]
    if owner is None:
        raise invalid(
            "The provided PaymentMethod was previously used with a PaymentIntent without Customer "
            "attachment, shared with a connected account without Customer attachment, or was detached "
            "from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must "
            "attach it to a Customer first.",
            param="payment_method",
        )
    if customer_id is None:
        raise invalid(
            f"The provided PaymentMethod belongs to a Customer ({owner}). Please provide the customer "
            "parameter when using this PaymentMethod.",
            param="payment_method",
        )
    if owner != customer_id:
        raise invalid(
            f"The provided PaymentMethod {pm['id']} does not belong to the Customer {customer_id}.",
            param="payment_method",
        )
