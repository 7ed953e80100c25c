"""The control API under `/_sandbox/`: inspection and fault injection for tests and benchmarks.

JSON in, JSON out, no authentication: the sandbox only ever runs on a developer's
machine or in CI.
"""

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from payments.sandbox import cards, checkout
from payments.sandbox.checkout import PayOutcome
from payments.sandbox.errors import StripeError

if TYPE_CHECKING:
    from payments.sandbox.app import Sandbox

Obj = dict[str, Any]
Result = tuple[int, Any]

OBJECT_TYPES = (
    "customer",
    "checkout.session",
    "payment_intent",
    "payment_method",
    "setup_intent",
    "charge",
    "refund",
    "event",
    "balance_transaction",
)


def _fail(status: int, message: str) -> Result:
    return status, {"error": {"message": message}}


def handle(sandbox: "Sandbox", method: str, path: str, query: str, body: bytes) -> Result:
    """Serve one control request."""
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        return _fail(400, "The body must be JSON.")
    if not isinstance(payload, dict):
        return _fail(400, "The body must be a JSON object.")
    args = {key: values[-1] for key, values in parse_qs(query).items()}
    parts = path.strip("/").split("/")[1:]  # after "_sandbox"
    route = (method, *parts)
    try:
        return _dispatch(sandbox, route, args, payload)
    except ValueError as exc:
        return _fail(400, str(exc))


def _dispatch(sandbox: "Sandbox", route: tuple[str, ...], args: dict[str, str], payload: Obj) -> Result:
    match route:
        case ("GET", "health"):
            return 200, {"ok": True, "base_url": sandbox.base_url}
        case ("GET", "config"):
            return 200, sandbox.config.snapshot()
        case ("POST", "config"):
            sandbox.config.update(payload)
            sandbox.webhooks.wake()
            return 200, sandbox.config.snapshot()
        case ("POST", "webhooks", "pause"):
            sandbox.config.update({"webhooks_paused": True})
            return 200, sandbox.config.snapshot()
        case ("POST", "webhooks", "resume"):
            sandbox.config.update({"webhooks_paused": False})
            sandbox.webhooks.wake()
            return 200, sandbox.config.snapshot()
        case ("GET", "deliveries"):
            data = sandbox.store.deliveries(
                event_id=args.get("event"), status=args.get("status"), event_type=args.get("type")
            )
            return 200, {"data": data, "count": len(data)}
        case ("GET", "requests"):
            data = sandbox.requests.select(
                method=args.get("method"),
                path=args.get("path"),
                path_prefix=args.get("path_prefix"),
                idempotency_key=args.get("idempotency_key"),
            )
            return 200, {"data": data, "count": len(data)}
        case ("DELETE", "requests"):
            sandbox.requests.clear()
            return 200, {"cleared": True}
        case ("GET", "faults"):
            return 200, {"data": sandbox.faults.as_json()}
        case ("POST", "faults"):
            return 200, sandbox.faults.add(payload).as_json()
        case ("DELETE", "faults"):
            sandbox.faults.clear()
            return 200, {"cleared": True}
        case ("DELETE", "faults", fault_id):
            if not sandbox.faults.remove(fault_id):
                return _fail(404, f"No such fault: {fault_id}")
            return 200, {"deleted": fault_id}
        case ("POST", "reset"):
            sandbox.reset()
            return 200, {"reset": True}
        case ("GET", "objects"):
            type_ = args.get("type", "")
            if type_ not in OBJECT_TYPES:
                return _fail(400, f"type must be one of {', '.join(OBJECT_TYPES)}")
            data = sandbox.store.all(type_)
            return 200, {"data": data, "count": len(data)}
        case ("POST", "clock", "advance"):
            seconds = payload.get("seconds")
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                return _fail(400, "seconds must be a non-negative number")
            sandbox.config.update({"clock_offset": sandbox.config.clock_offset + seconds})
            sandbox.webhooks.wake()
            return 200, {"now": sandbox.config.now(), "clock_offset": sandbox.config.clock_offset}
        case ("POST", "checkout", session_id, "pay"):
            return _pay(sandbox, session_id, payload)
        case ("POST", "checkout", session_id, "authenticate"):
            return _authenticate(sandbox, session_id, payload)
    return _fail(404, f"Unknown control endpoint: {' '.join(route)}")


def _outcome(outcome: PayOutcome) -> Result:
    status = {"succeeded": 200, "requires_action": 200, "declined": 402, "invalid": 400}.get(
        outcome.status, 409
    )
    return status, {
        "outcome": outcome.status,
        "message": outcome.message,
        "error": outcome.error,
        "redirect_url": outcome.redirect_url,
        "session": outcome.session,
        "payment_intent": outcome.intent
        if outcome.intent and outcome.intent["object"] == "payment_intent"
        else None,
        "setup_intent": outcome.intent
        if outcome.intent and outcome.intent["object"] == "setup_intent"
        else None,
    }


def _pay(sandbox: "Sandbox", session_id: str, payload: Obj) -> Result:
    number = payload.get("card_number")
    if not isinstance(number, str):
        return _fail(400, "card_number is required")
    next_year = time.gmtime().tm_year % 100 + 5
    try:
        outcome = checkout.pay_session(
            sandbox.ctx(),
            session_id,
            card_number=number,
            exp=str(payload.get("exp") or f"12/{next_year:02d}"),
            cvc=str(payload.get("cvc") or cards.default_cvc(number)),
        )
    except StripeError as exc:
        return exc.status, exc.body()
    return _outcome(outcome)


def _authenticate(sandbox: "Sandbox", session_id: str, payload: Obj) -> Result:
    action = payload.get("action", "complete")
    if action not in ("complete", "fail"):
        return _fail(400, "action must be complete or fail")
    ctx = sandbox.ctx()
    try:
        session = checkout.get_session(ctx, session_id)
    except StripeError as exc:
        return exc.status, exc.body()
    intent_id = session["payment_intent"] or session["setup_intent"]
    outcome = checkout.authenticate(ctx, intent_id, succeed=action == "complete") if intent_id else None
    if outcome is None:
        return _fail(409, "This Checkout Session has no payment waiting for authentication.")
    return _outcome(outcome)
