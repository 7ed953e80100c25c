"""Customers and the cards attached to them."""

from payments.sandbox import objects
from payments.sandbox.context import Ctx
from payments.sandbox.events import record_event
from payments.sandbox.forms import check_known, metadata_param, str_param

Obj = objects.Obj

_CREATE_PARAMS = (
    "email",
    "name",
    "metadata",
    "description",
    "phone",
    "preferred_locales",
    "expand",
    "address",
    "shipping",
    "invoice_settings",
    "tax_exempt",
    "payment_method",
    "test_clock",
)


def create_customer(ctx: Ctx, params: Obj) -> Obj:
    """Create a customer from `POST /v1/customers` parameters."""
    check_known(params, _CREATE_PARAMS)
    return new_customer(
        ctx,
        email=str_param(params, "email"),
        name=str_param(params, "name"),
        description=str_param(params, "description"),
        phone=str_param(params, "phone"),
        metadata=metadata_param(params),
    )


def new_customer(
    ctx: Ctx,
    *,
    email: str | None,
    name: str | None = None,
    description: str | None = None,
    phone: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Obj:
    """Create and record a customer."""
    customer = objects.customer(
        created=ctx.now(),
        email=email,
        name=name,
        description=description,
        phone=phone,
        metadata=metadata or {},
    )
    with ctx.store.transaction():
        ctx.store.insert(customer)
        record_event(ctx, "customer.created", customer)
    return customer


def attach_payment_method(ctx: Ctx, pm: Obj, customer_id: str) -> Obj:
    """Attach a card to a customer so it can be charged off-session later."""
    pm["customer"] = customer_id
    # Checkout asks for the viewer's consent to save the card, which allows showing it again.
    pm["allow_redisplay"] = "always"
    with ctx.store.transaction():
        ctx.store.save(pm)
        record_event(ctx, "payment_method.attached", pm)
    return pm
