"""Sign webhook bodies exactly as Stripe does, for tests of the webhook endpoint."""

import hashlib
import hmac
import json
import time
from typing import Any


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a `Stripe-Signature` header value for the raw payload."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def event_body(event_id: str, event_type: str, obj: dict[str, Any], created: int | None = None) -> bytes:
    """Return the JSON body of a Stripe event around `obj`."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-07-29",
            "created": created or int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
    ).encode()
