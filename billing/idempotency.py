"""Idempotency-Key support for viewer requests that create things.

A request with a key is answered once; the same key again gets the stored answer, and the
same key with other parameters is refused, as Stripe's own API does.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from accounts.models import BillingAccount
from billing.errors import DomainError
from billing.models import IdempotentRequest

MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used with different parameters."
    status_code = 422


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"
    message = f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters."
    status_code = 400


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: Any


def request_fingerprint(operation: str, parameters: dict[str, Any]) -> str:
    """Return a stable hash of an operation and its parameters."""
    canonical = json.dumps({"operation": operation, "parameters": parameters}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    """Return the key if it is usable, else raise `IdempotencyKeyInvalid`."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyKeyInvalid()
    return key


def idempotent_answer_get(*, account: BillingAccount, key: str, fingerprint: str) -> StoredAnswer | None:
    """Return the stored answer for this key, or None if the key is new."""
    stored = IdempotentRequest.objects.filter(account=account, key=key).first()
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return StoredAnswer(status=stored.response_status, body=stored.response_body)


def idempotent_answer_store(
    *, account: BillingAccount, key: str, fingerprint: str, status: int, body: Any
) -> StoredAnswer:
    """Store the answer for a key; if a concurrent request stored one first, return that one."""
    json_body = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
    stored, _ = IdempotentRequest.objects.get_or_create(
        account=account,
        key=key,
        defaults={"fingerprint": fingerprint, "response_status": status, "response_body": json_body},
    )
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return StoredAnswer(status=stored.response_status, body=stored.response_body)
