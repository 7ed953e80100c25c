"""The control API (`/_sandbox/`, JSON, no authentication): faults, requests, notifications, cards."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from payments.sandbox.yookassa.checks import YooKassaError

if TYPE_CHECKING:
    from payments.sandbox.yookassa.app import YooKassaSandbox

Obj = dict[str, Any]
_CONFIG_KEYS = {
    "webhook_url",
    "webhooks_paused",
    "webhook_retry_base",
    "webhook_retry_cap",
    "webhook_max_attempts",
    "webhook_timeout",
    "latency_ms",
    "timeout_hold_seconds",
}


def handle(
    sandbox: YooKassaSandbox, method: str, path: str, query: dict[str, str], body: bytes
) -> tuple[int, Any]:
    """Answer one control request."""
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return 400, {"error": "the body is not JSON"}
    if not isinstance(data, dict):
        return 400, {"error": "the body must be a JSON object"}
    route = (method, path)
    if route == ("GET", "/_sandbox/health"):
        return 200, {"ok": True, "base_url": sandbox.base_url}
    if route == ("GET", "/_sandbox/config"):
        return 200, _config(sandbox)
    if route == ("POST", "/_sandbox/config"):
        unknown = set(data) - _CONFIG_KEYS
        if unknown:
            return 400, {"error": f"unknown settings: {', '.join(sorted(unknown))}"}
        url = data.get("webhook_url")
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            return 400, {"error": "webhook_url must be an http(s) URL or null"}
        sandbox.config.update(data)
        sandbox.notifier.wake()
        return 200, _config(sandbox)
    if route == ("POST", "/_sandbox/faults"):
        try:
            fault = sandbox.faults.add({"path": "/v3/", **data})
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return 200, fault.as_json()
    if route == ("GET", "/_sandbox/faults"):
        return 200, sandbox.faults.as_json()
    if route == ("DELETE", "/_sandbox/faults"):
        sandbox.faults.clear()
        return 200, {"ok": True}
    if route == ("GET", "/_sandbox/requests"):
        return 200, sandbox.requests.select(
            method=query.get("method"),
            path=query.get("path"),
            path_prefix=query.get("path_prefix"),
            idempotency_key=query.get("idempotency_key"),
        )
    if route == ("DELETE", "/_sandbox/requests"):
        sandbox.requests.clear()
        return 200, {"ok": True}
    if route == ("GET", "/_sandbox/notifications"):
        return 200, sandbox.notifier.deliveries(query.get("event"))
    if route == ("POST", "/_sandbox/clock/advance"):
        seconds = data.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            return 400, {"error": "seconds must be a positive number"}
        with sandbox.state.lock:
            sandbox.state.clock_offset += float(seconds)
        return 200, {"clock_offset": sandbox.state.clock_offset}
    if route == ("POST", "/_sandbox/reset"):
        sandbox.reset()
        return 200, {"ok": True}
    if method == "POST" and (
        match := re.match(r"^/_sandbox/payments/([0-9a-f-]{36})/(pay|authenticate)$", path)
    ):
        return _pay(sandbox, match.group(1), match.group(2), data)
    if method == "POST" and (match := re.match(r"^/_sandbox/payment_methods/([0-9a-f-]{36})$", path)):
        return _method(sandbox, match.group(1), data)
    return 404, {"error": f"no control endpoint {method} {path}"}


def _config(sandbox: YooKassaSandbox) -> Obj:
    return {key: value for key, value in sandbox.config.items() if key != "secret_key"}


def _pay(sandbox: YooKassaSandbox, payment_id: str, action: str, data: Obj) -> tuple[int, Any]:
    from payments.sandbox.yookassa.server import pay

    try:
        if action == "pay":
            outcome, message = pay(sandbox, payment_id, {k: str(v) for k, v in data.items()})
        else:
            with sandbox.state.lock:
                outcome = sandbox.state.authenticate(payment_id, passed=data.get("action") == "complete")
            message = None
        with sandbox.state.lock:
            payment = sandbox.state.payment(payment_id)
    except YooKassaError as exc:
        return exc.status, exc.body()
    status = {"succeeded": 200, "requires_action": 200, "declined": 402, "invalid": 400}.get(outcome, 409)
    return status, {"outcome": outcome, "message": message, "payment": payment}


def _method(sandbox: YooKassaSandbox, method_id: str, data: Obj) -> tuple[int, Any]:
    """Make a saved method decline its next off-session charges with a reason (null: succeed again)."""
    reason = data.get("decline_reason")
    if reason is not None and not isinstance(reason, str):
        return 400, {"error": "decline_reason must be a reason or null"}
    with sandbox.state.lock:
        method = sandbox.state.methods.get(method_id)
        if method is None:
            return 404, {"error": "no such saved method"}
        method["decline_reason"] = reason
    return 200, {"id": method_id, "decline_reason": reason}
