"""A thin HTTP client for YooKassa's API v3 over `requests`: auth, keys, a hard timeout, errors.

Why not the official SDK's `ApiClient`: it keeps the shop's credentials on a class shared by
the whole process (`Configuration.configure`), sends requests with no network timeout at all
(its `timeout` is the pause between its own retries of a 202), makes up a random
Idempotence-Key when none is given, and turns a refused connection into an AttributeError.
So requests go out here, and the answers are read with the SDK's models (`mapping.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import requests

from payments.gateways.errors import (
    GatewayError,
    PermanentGatewayError,
    RateLimited,
    TemporaryGatewayError,
)

DEFAULT_API_BASE = "https://api.yookassa.ru/v3"

# YooKassa takes keys of at most 64 characters; a longer key of ours is replaced by its SHA-256
# (64 hex digits), which is as deterministic as the key itself.
MAX_IDEMPOTENCE_KEY_LENGTH = 64


def idempotence_key(key: str) -> str:
    """Return the Idempotence-Key YooKassa is sent for one of our idempotency keys."""
    if not key:
        # Never invent one: a retried payment must carry the key of what it pays for.
        raise ValueError("an idempotency key is required for this call")
    if len(key) <= MAX_IDEMPOTENCE_KEY_LENGTH:
        return key
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class YooKassaClient:
    """Send one request to YooKassa and return its JSON object, or raise a GatewayError."""

    def __init__(self, *, shop_id: str, secret_key: str, api_base: str, timeout: float) -> None:
        if not shop_id or not secret_key:
            raise ValueError("shop_id and secret_key are required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        self._session.auth = (shop_id, secret_key)
        # Keep-alive connections are reused; redirects are never what YooKassa answers.
        self._session.max_redirects = 0

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Send `method path` (with our key on a POST) and return the answer's JSON object."""
        headers = {"Accept": "application/json"}
        if method == "POST":
            headers["Idempotence-Key"] = idempotence_key(idempotency_key or "")
        try:
            response = self._session.request(
                method,
                self._base + path,
                json=dict(body) if body is not None else None,
                params=dict(params) if params else None,
                headers=headers,
                # (connect, read): a hard limit on each, so a silent provider cannot hold a worker.
                timeout=(self._timeout, self._timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            # Refused, reset, DNS or a read timeout: the call may or may not have run, so it is
            # retried under the same key, which YooKassa answers with the first result.
            raise TemporaryGatewayError(f"YooKassa unreachable: {exc}", code="api_connection_error") from exc
        return _answer(response)


def _answer(response: requests.Response) -> dict[str, Any]:
    """Return the JSON object of a 200 answer, or raise the error the status stands for."""
    request_id = response.headers.get("Request-Id") or None
    try:
        data = response.json()
    except (ValueError, json.JSONDecodeError):
        data = None
    status = response.status_code
    if status == 200 and isinstance(data, dict):
        return data
    if status == 200:
        raise PermanentGatewayError(
            "YooKassa answered 200 without a JSON object", code="unexpected_response", http_status=status
        )
    raise gateway_error(status, data if isinstance(data, dict) else {}, request_id=request_id)


def gateway_error(status: int, body: Mapping[str, Any], *, request_id: str | None = None) -> GatewayError:
    """Return the gateway error for a non-200 answer (docs/gateway.md, YooKassa's errors)."""
    code = str(body.get("code") or "") or None
    description = str(body.get("description") or "") or f"YooKassa answered {status}"
    if body.get("parameter"):
        description = f"{description} (parameter: {body['parameter']})"
    request_id = request_id or (str(body["id"]) if body.get("id") else None)
    common: dict[str, Any] = {"http_status": status, "request_id": request_id}
    if status == 429:
        return RateLimited(description, code=code or "too_many_requests", **common)
    if status == 202 or status >= 500:
        # 202: YooKassa is still working on it and asks to be asked again with the same key.
        return TemporaryGatewayError(description, code=code or "internal_server_error", **common)
    if status in (401, 403):
        # Wrong shop id or secret key, or an operation the shop may not do: configuration.
        return PermanentGatewayError(description, code=code or "invalid_credentials", **common)
    if status == 404:
        return PermanentGatewayError(description, code=code or "not_found", **common)
    return PermanentGatewayError(description, code=code or "invalid_request", **common)
