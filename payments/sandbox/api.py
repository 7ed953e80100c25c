"""The Stripe API subset the billing service's gateway calls: routes to operations.

Each route takes the parsed parameters and answers (status, JSON body). Reading
an unknown id answers 404 `resource_missing` like Stripe; `expand[]` replaces ids
with the objects they name.
"""

import copy
import re
from collections.abc import Callable
from typing import Any

from payments.sandbox import checkout, events, objects
from payments.sandbox.context import Ctx
from payments.sandbox.customers import create_customer
from payments.sandbox.errors import invalid, resource_missing
from payments.sandbox.forms import check_known, list_param, str_param
from payments.sandbox.payment_intents import create_payment_intent
from payments.sandbox.refunds import create_refund

Obj = objects.Obj
Result = tuple[int, Obj]
# The last argument is the id in the path ("" for collection routes).
Handler = Callable[[Ctx, Obj, str], Result]

# The name Stripe uses in "No such ..." messages, by object type.
LABELS = {
    "customer": "customer",
    "checkout.session": "checkout.session",
    "payment_intent": "payment_intent",
    "payment_method": "PaymentMethod",
    "setup_intent": "setup_intent",
    "charge": "charge",
    "refund": "refund",
    "event": "event",
    "balance_transaction": "balance transaction",
}


def expand(ctx: Ctx, obj: Obj, paths: list[Any]) -> Obj:
    """Replace the ids named by `expand[]` paths (`payment_intent`, `latest_charge.balance_transaction`)."""
    result = copy.deepcopy(obj)
    for path in paths:
        if not isinstance(path, str) or not path:
            raise invalid("Invalid array: expand", param="expand")
        _expand_path(ctx, result, path.split("."), path)
    return result


def _expand_path(ctx: Ctx, node: Any, parts: list[str], path: str) -> None:
    if not parts or not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head == "data" and isinstance(node.get("data"), list):
        for item in node["data"]:
            _expand_path(ctx, item, rest, path)
        return
    if head == "line_items" and node.get("object") == "checkout.session":
        node["line_items"] = checkout.line_items_of(ctx, node["id"])
        return
    if head not in node:
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    value = node[head]
    if isinstance(value, str):
        loaded = ctx.store.get(value)
        if loaded is None:
            raise invalid(f"This property cannot be expanded ({path}).", param="expand")
        node[head] = value = loaded
    elif value is not None and not isinstance(value, dict):
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    _expand_path(ctx, value, rest, path)


def _expanded(ctx: Ctx, params: Obj, obj: Obj) -> Obj:
    return expand(ctx, obj, list_param(params, "expand"))


def _retrieve(type_: str) -> Handler:
    def handle(ctx: Ctx, params: Obj, object_id: str) -> Result:
        check_known(params, ("expand",))
        obj = ctx.store.get(object_id, type_)
        if obj is None:
            raise resource_missing(LABELS[type_], object_id)
        return 200, _expanded(ctx, params, obj)

    return handle


def _create_customer(ctx: Ctx, params: Obj, _: str) -> Result:
    return 200, _expanded(ctx, params, create_customer(ctx, params))


def _create_session(ctx: Ctx, params: Obj, _: str) -> Result:
    return 200, _expanded(ctx, params, checkout.create_session(ctx, params))


def _get_session(ctx: Ctx, params: Obj, session_id: str) -> Result:
    check_known(params, ("expand",))
    return 200, _expanded(ctx, params, checkout.get_session(ctx, session_id))


def _expire_session(ctx: Ctx, params: Obj, session_id: str) -> Result:
    check_known(params, ("expand",))
    return 200, _expanded(ctx, params, checkout.expire_session(ctx, session_id))


def _create_payment_intent(ctx: Ctx, params: Obj, _: str) -> Result:
    status, body = create_payment_intent(ctx, params)
    return status, _expanded(ctx, params, body) if status == 200 else body


def _create_refund(ctx: Ctx, params: Obj, _: str) -> Result:
    return 200, _expanded(ctx, params, create_refund(ctx, params))


def _list_events(ctx: Ctx, params: Obj, _: str) -> Result:
    return 200, _expanded(ctx, params, events.list_events(ctx, params))


def _get_event(ctx: Ctx, params: Obj, event_id: str) -> Result:
    check_known(params, ("expand",))
    return 200, _expanded(ctx, params, events.get_event(ctx, event_id))


def _list_balance_transactions(ctx: Ctx, params: Obj, _: str) -> Result:
    check_known(
        params,
        (
            "limit",
            "starting_after",
            "ending_before",
            "created",
            "type",
            "source",
            "currency",
            "payout",
            "expand",
        ),
    )
    limit, after, before = events.page_request(
        ctx, params, type_="balance_transaction", label=LABELS["balance_transaction"]
    )
    field_in = None
    for name in ("type", "source", "currency"):
        value = str_param(params, name)
        if value is not None:
            if field_in is not None:
                raise invalid("The sandbox filters balance transactions by one of type, source, currency.")
            field_in = (name, [value])
    items, has_more = ctx.store.page(
        "balance_transaction",
        limit=limit,
        after_seq=after,
        before_seq=before,
        created=events.created_filter(params),
        field_in=field_in,
    )
    listing = objects.list_object("/v1/balance_transactions", items, has_more)
    return 200, _expanded(ctx, params, listing)


def _get_balance(ctx: Ctx, params: Obj, _: str) -> Result:
    """Answer the account's balance: the net of every balance transaction, by currency and status."""
    check_known(params, ("expand",))
    available: dict[str, int] = {}
    pending: dict[str, int] = {}
    for txn in ctx.store.all("balance_transaction"):
        # The sandbox books every transaction `available` at once; one stored as `pending`
        # would count there until it is released, as Stripe counts it.
        funds = pending if txn["status"] == "pending" else available
        funds[txn["currency"]] = funds.get(txn["currency"], 0) + txn["net"]
    return 200, _expanded(ctx, params, objects.balance(available=available, pending=pending))


def _list_charges(ctx: Ctx, params: Obj, _: str) -> Result:
    check_known(
        params,
        (
            "limit",
            "starting_after",
            "ending_before",
            "created",
            "customer",
            "payment_intent",
            "transfer_group",
            "expand",
        ),
    )
    return _list_of(ctx, params, "charge", "/v1/charges", ("customer", "payment_intent", "transfer_group"))


def _list_refunds(ctx: Ctx, params: Obj, _: str) -> Result:
    check_known(
        params, ("limit", "starting_after", "ending_before", "created", "charge", "payment_intent", "expand")
    )
    return _list_of(ctx, params, "refund", "/v1/refunds", ("charge", "payment_intent"))


def _list_of(ctx: Ctx, params: Obj, type_: str, url: str, filters: tuple[str, ...]) -> Result:
    """Answer a list endpoint newest first, paginated and filtered by `created` and one field."""
    limit, after, before = events.page_request(ctx, params, type_=type_, label=LABELS[type_])
    field_in = None
    for name in filters:
        value = str_param(params, name)
        if value is not None:
            if field_in is not None:
                raise invalid(f"The sandbox filters {url} by one of {', '.join(filters)}.")
            field_in = (name, [value])
    items, has_more = ctx.store.page(
        type_,
        limit=limit,
        after_seq=after,
        before_seq=before,
        created=events.created_filter(params),
        field_in=field_in,
    )
    return 200, _expanded(ctx, params, objects.list_object(url, items, has_more))


_ID = r"(?P<id>[A-Za-z0-9_]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", re.compile(r"/v1/customers"), _create_customer),
    ("GET", re.compile(rf"/v1/customers/{_ID}"), _retrieve("customer")),
    ("POST", re.compile(r"/v1/checkout/sessions"), _create_session),
    ("GET", re.compile(rf"/v1/checkout/sessions/{_ID}"), _get_session),
    ("POST", re.compile(rf"/v1/checkout/sessions/{_ID}/expire"), _expire_session),
    ("POST", re.compile(r"/v1/payment_intents"), _create_payment_intent),
    ("GET", re.compile(rf"/v1/payment_intents/{_ID}"), _retrieve("payment_intent")),
    ("GET", re.compile(rf"/v1/payment_methods/{_ID}"), _retrieve("payment_method")),
    ("GET", re.compile(rf"/v1/setup_intents/{_ID}"), _retrieve("setup_intent")),
    ("GET", re.compile(r"/v1/charges"), _list_charges),
    ("GET", re.compile(rf"/v1/charges/{_ID}"), _retrieve("charge")),
    ("POST", re.compile(r"/v1/refunds"), _create_refund),
    ("GET", re.compile(r"/v1/refunds"), _list_refunds),
    ("GET", re.compile(rf"/v1/refunds/{_ID}"), _retrieve("refund")),
    ("GET", re.compile(r"/v1/events"), _list_events),
    ("GET", re.compile(rf"/v1/events/{_ID}"), _get_event),
    ("GET", re.compile(r"/v1/balance"), _get_balance),
    ("GET", re.compile(r"/v1/balance_transactions"), _list_balance_transactions),
    ("GET", re.compile(rf"/v1/balance_transactions/{_ID}"), _retrieve("balance_transaction")),
]


def find_route(method: str, path: str) -> tuple[Handler, str] | None:
    """Return the handler for a request and the id in its path, or None."""
    for route_method, pattern, handler in ROUTES:
        if route_method == method and (match := pattern.fullmatch(path)):
            return handler, match.groupdict().get("id") or ""
    return None


def unrecognized(method: str, path: str) -> Result:
    """Return Stripe's answer to a URL it does not serve."""
    error = invalid(
        f"Unrecognized request URL ({method}: {path}). The billing service's Stripe sandbox serves only "
        "the API subset its gateway uses; see docs/sandbox.md.",
        status=404,
    )
    return 404, error.body()
