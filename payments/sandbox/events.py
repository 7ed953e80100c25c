"""Recording events, queueing their webhook deliveries, and reading them back."""

import copy
import random
import time

from payments.sandbox import objects
from payments.sandbox.context import Ctx
from payments.sandbox.errors import invalid, resource_missing
from payments.sandbox.forms import check_known, hash_param, int_param, list_param, str_param

Obj = objects.Obj


def record_event(ctx: Ctx, type_: str, data_object: Obj) -> Obj:
    """Record that `data_object` changed and queue the event for the webhook endpoint."""
    event = objects.event(
        created=ctx.now(),
        type_=type_,
        data_object=copy.deepcopy(data_object),
        api_version=ctx.config.api_version,
        request_id=ctx.request_id,
        idempotency_key=ctx.idempotency_key,
    )
    with ctx.store.transaction():
        ctx.store.insert(event)
        # Like a Stripe endpoint, only events that happen while one is configured are sent.
        if ctx.config.webhook_url:
            for _ in range(_deliveries_of_one_event(ctx)):
                now = time.time()
                ctx.store.add_delivery(
                    delivery_id=objects.new_id("whdel"),
                    event_id=event["id"],
                    event_type=type_,
                    now=now,
                    due=now + _random.uniform(0, ctx.config.webhook_delay_max),
                )
    ctx.wake_webhooks()
    return event


# Which events are sent twice, and how long each is held back, is no secret.
_random = random.Random()  # noqa: S311


def _deliveries_of_one_event(ctx: Ctx) -> int:
    """Return how many times to send one event: twice for `webhook_duplicate_chance` of them."""
    chance = ctx.config.webhook_duplicate_chance
    return 2 if chance and _random.random() < chance else 1


def with_pending_webhooks(ctx: Ctx, events: list[Obj]) -> list[Obj]:
    """Fill in `pending_webhooks`, which changes as deliveries succeed."""
    pending = ctx.store.pending_webhooks([event["id"] for event in events])
    for event in events:
        event["pending_webhooks"] = pending.get(event["id"], 0)
    return events


def created_filter(params: Obj) -> dict[str, int]:
    """Return the `created` filter of a list request (`created=N` or `created[gte]=N`...)."""
    raw = params.get("created")
    if raw is None:
        return {}
    if isinstance(raw, str):
        value = int_param(params, "created")
        return {"gte": value, "lte": value} if value is not None else {}
    bounds = hash_param(params, "created")
    check_known(bounds, ("gt", "gte", "lt", "lte"), prefix="created")
    return {
        op: value for op in bounds if (value := int_param(bounds, op, label=f"created[{op}]")) is not None
    }


def page_request(ctx: Ctx, params: Obj, *, type_: str, label: str) -> tuple[int, int | None, int | None]:
    """Return (limit, after_seq, before_seq) from Stripe's pagination parameters."""
    limit = int_param(params, "limit")
    if limit is None:
        limit = 10
    if not 1 <= limit <= 100:
        raise invalid("This value must be between 1 and 100.", param="limit")
    cursors = {}
    for name in ("starting_after", "ending_before"):
        object_id = str_param(params, name)
        if object_id is not None:
            seq = ctx.store.seq_of(object_id, type_)
            if seq is None:
                raise resource_missing(label, object_id, param=name, status=400)
            cursors[name] = seq
    if len(cursors) == 2:
        raise invalid("You may only specify one of these parameters: ending_before, starting_after.")
    return limit, cursors.get("starting_after"), cursors.get("ending_before")


def list_events(ctx: Ctx, params: Obj) -> Obj:
    """Return events newest first, filtered and paginated as Stripe's `GET /v1/events`."""
    check_known(
        params,
        (
            "limit",
            "starting_after",
            "ending_before",
            "created",
            "type",
            "types",
            "delivery_success",
            "expand",
        ),
    )
    limit, after, before = page_request(ctx, params, type_="event", label="event")
    types = list_param(params, "types")
    one_type = str_param(params, "type")
    if one_type and types:
        raise invalid("You may only specify one of these parameters: type, types.")
    wanted = [one_type] if one_type else [str(name) for name in types]
    field_in = None
    if wanted:
        if any("*" in name for name in wanted):
            # `type=charge.*` is a prefix match in Stripe.
            prefixes = [name.rstrip("*") for name in wanted]
            all_types = {event["type"] for event in ctx.store.all("event")}
            wanted = [name for name in all_types if any(name.startswith(p) for p in prefixes)] or ["-"]
        field_in = ("type", wanted)
    items, has_more = ctx.store.page(
        "event",
        limit=limit,
        after_seq=after,
        before_seq=before,
        created=created_filter(params),
        field_in=field_in,
    )
    return objects.list_object("/v1/events", with_pending_webhooks(ctx, items), has_more)


def get_event(ctx: Ctx, event_id: str) -> Obj:
    """Return one event."""
    event = ctx.store.get(event_id, "event")
    if event is None:
        raise resource_missing("event", event_id)
    return with_pending_webhooks(ctx, [event])[0]
