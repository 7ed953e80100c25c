"""Idempotency-Key support for viewer requests that create things.

A request with a key is answered once; the same key again gets the stored answer with its
first status, and the same key with other parameters is refused, as payment providers' own APIs do.
The key is bound to its parameters before the operation runs, so a refused request never
has side effects.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction

from accounts.models import BillingAccount
from billing.models import IdempotentRequest
from core.errors import DomainError

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


def idempotent_request_reserve(*, account: BillingAccount, key: str, fingerprint: str) -> StoredAnswer | None:
    """Bind a key to this request's parameters before anything is done; return its answer if stored.

    The unique (account, key) row is written first, so of concurrent requests sharing a key
    only those with the same parameters go on: any other is refused (`IdempotencyKeyReused`)
    before it can change anything. Requests with the same parameters run the operation,
    which is idempotent itself, and the first answer stored is the one they all return.
    """
    try:
        with transaction.atomic():
            stored, _ = IdempotentRequest.objects.get_or_create(
                account=account, key=key, defaults={"fingerprint": fingerprint}
            )
    except IntegrityError:
        stored = IdempotentRequest.objects.get(account=account, key=key)
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if stored.response_status is None:
        return None
    return StoredAnswer(status=stored.response_status, body=stored.response_body)


@transaction.atomic
def idempotent_answer_store(
    *, account: BillingAccount, key: str, fingerprint: str, status: int, body: Any
) -> StoredAnswer:
    """Store the answer for a key, with its status; if another request stored one first, return that."""
    json_body = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
    stored, _ = IdempotentRequest.objects.select_for_update().get_or_create(
        account=account, key=key, defaults={"fingerprint": fingerprint}
    )
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if stored.response_status is None:
        stored.response_status, stored.response_body = status, json_body
        stored.save(update_fields=["response_status", "response_body"])
    return StoredAnswer(status=stored.response_status, body=stored.response_body)


def idempotent_request_release(*, account: BillingAccount, key: str, fingerprint: str) -> None:
    """Forget a key whose request ended without an answer to keep, so the key can be retried."""
    IdempotentRequest.objects.filter(
        account=account, key=key, fingerprint=fingerprint, response_status__isnull=True
    ).delete()
