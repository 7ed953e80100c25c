"""The HTTP front of the YooKassa sandbox: API v3, the confirmation page and the control API.

Each API request goes through faults and latency (the sandbox's addition), HTTP Basic, then the
Idempotence-Key check and the operation under the state's lock, so a replayed key never creates
anything and concurrent requests with one key create one object.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from payments.sandbox.yookassa import pages
from payments.sandbox.yookassa.cards import normalize, parse_expiry
from payments.sandbox.yookassa.checks import YooKassaError, invalid

if TYPE_CHECKING:
    from payments.sandbox.yookassa.app import YooKassaSandbox

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
_ID = r"([0-9a-f-]{36})"
_ROUTES = [
    ("POST", re.compile(r"^/v3/payments$"), "create_payment"),
    ("GET", re.compile(r"^/v3/payments$"), "list_payments"),
    ("GET", re.compile(rf"^/v3/payments/{_ID}$"), "get_payment"),
    ("POST", re.compile(rf"^/v3/payments/{_ID}/capture$"), "capture"),
    ("POST", re.compile(rf"^/v3/payments/{_ID}/cancel$"), "cancel"),
    ("POST", re.compile(r"^/v3/refunds$"), "create_refund"),
    ("GET", re.compile(r"^/v3/refunds$"), "list_refunds"),
    ("GET", re.compile(rf"^/v3/refunds/{_ID}$"), "get_refund"),
    ("GET", re.compile(rf"^/v3/payment_methods/{_ID}$"), "get_method"),
]
MAX_KEY_LENGTH = 64
RATE_LIMIT_BODY = {
    "type": "error",
    "code": "too_many_requests",
    "description": "Too many requests (injected).",
}
SERVER_ERROR_BODY = {
    "type": "error",
    "code": "internal_server_error",
    "description": "Internal error (injected).",
}


class _Dropped(Exception):
    """End the request without any answer (a simulated time-out)."""


class YooKassaHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its sandbox."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: YooKassaSandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    """Serve one connection."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: YooKassaHTTPServer
    server_version = "yookassa-sandbox"
    sys_version = ""

    def do_GET(self) -> None:
        """Serve a GET."""
        self._route("GET")

    def do_POST(self) -> None:
        """Serve a POST."""
        self._route("POST")

    def do_DELETE(self) -> None:
        """Serve a DELETE."""
        self._route("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Log quietly through `logging`."""
        logger.debug("%s - %s", self.address_string(), format % args)

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            if url.path.startswith("/v3/"):
                self._api(method, url.path, query, body)
            elif url.path.startswith("/_sandbox/"):
                from payments.sandbox.yookassa.control import handle

                status, payload = handle(self.server.sandbox, method, url.path, query, body)
                self._send(status, json.dumps(payload, indent=2).encode(), "application/json")
            elif url.path in ("/payments/confirm", "/payments/3ds"):
                self._page(method, url.path, query, body)
            else:
                self._send(404, json.dumps(invalid("unknown path").body()).encode(), "application/json")
        except (_Dropped, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            logger.exception("YooKassa sandbox failed on %s %s", method, url.path)
            self._send(500, json.dumps(SERVER_ERROR_BODY).encode(), "application/json")

    # --- API ------------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        sandbox = self.server.sandbox
        key = self.headers.get("Idempotence-Key") if method == "POST" else None
        started = time.monotonic()
        entry: Obj = {
            "id": str(uuid.uuid4()),
            "method": method,
            "path": path,
            "query": query,
            "idempotency_key": key,
            "status": None,
            "replayed": False,
            "fault": None,
            "time": time.time(),
            "duration_ms": None,
        }
        sandbox.requests.add(entry)
        try:
            decision = sandbox.faults.decide(method, path)
            delay = float(sandbox.config.get("latency_ms", 0)) + decision.latency_ms
            if delay:
                sandbox.stopping.wait(delay / 1000)
            fault = decision.fault
            if fault is not None and fault.when == "before":
                entry["fault"] = fault.mode
                entry["status"] = self._inject(fault.mode, fault.status, fault.hold_seconds)
                return
            status, payload, replayed = self._execute(method, path, query, body, key)
            entry["replayed"] = replayed
            if fault is not None:
                # Done, and its answer kept for the key, but the client never hears of it.
                entry["fault"] = f"{fault.mode} after"
                entry["status"] = self._inject(fault.mode, fault.status, fault.hold_seconds)
                return
            entry["status"] = status
            self._send(status, payload.encode(), "application/json")
        finally:
            entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)

    def _inject(self, mode: str, status: int, hold: float | None) -> int | None:
        sandbox = self.server.sandbox
        if mode == "timeout":
            sandbox.stopping.wait(hold or float(sandbox.config.get("timeout_hold_seconds", 5.0)))
            raise _Dropped
        code, body = (429, RATE_LIMIT_BODY) if mode == "rate_limit" else (status, SERVER_ERROR_BODY)
        self._send(code, json.dumps(body).encode(), "application/json")
        return code

    def _execute(
        self, method: str, path: str, query: dict[str, str], body: bytes, key: str | None
    ) -> tuple[int, str, bool]:
        sandbox = self.server.sandbox
        try:
            self._check_auth()
            route = next(
                (
                    (name, m)
                    for verb, pattern, name in _ROUTES
                    if verb == method and (m := pattern.match(path))
                ),
                None,
            )
            if route is None:
                raise YooKassaError(404, "not_found", f"Unknown method {method} {path}")
            name, match = route
            params: Obj = {}
            if method == "POST":
                if not key:
                    raise invalid("Idempotence-Key header is required", "Idempotence-Key")
                if len(key) > MAX_KEY_LENGTH:
                    raise invalid("Idempotence-Key is longer than 64 characters", "Idempotence-Key")
                try:
                    params = json.loads(body or b"{}")
                except ValueError as exc:
                    raise invalid("The request body is not JSON") from exc
                if not isinstance(params, dict):
                    raise invalid("The request body must be a JSON object")
            fingerprint = hashlib.sha256(
                f"{method} {path} {json.dumps(params, sort_keys=True)}".encode()
            ).hexdigest()
            with sandbox.state.lock:
                if key is not None and key in sandbox.state.keys:
                    stored_fingerprint, status, text = sandbox.state.keys[key]
                    if stored_fingerprint != fingerprint:
                        raise invalid(
                            "Idempotence key duplicated: the key was used with other parameters",
                            "Idempotence-Key",
                        )
                    return status, text, True
                result = self._operation(name, match.groups(), params, query)
                text = json.dumps(result, indent=2)
                if key is not None:
                    sandbox.state.keys[key] = (fingerprint, 200, text)
                return 200, text, False
        except YooKassaError as exc:
            return exc.status, json.dumps(exc.body(), indent=2), False

    def _operation(self, name: str, ids: tuple[str, ...], params: Obj, query: dict[str, str]) -> Obj:
        state = self.server.sandbox.state
        operations = {
            "create_payment": lambda: state.create_payment(params),
            "list_payments": lambda: state.list_payments(query),
            "get_payment": lambda: state.payment(ids[0]),
            "capture": lambda: state.capture(ids[0], params),
            "cancel": lambda: state.cancel(ids[0]),
            "create_refund": lambda: state.create_refund(params),
            "list_refunds": lambda: state.list_refunds(query),
            "get_refund": lambda: state.refund(ids[0]),
            "get_method": lambda: state.method(ids[0]),
        }
        result: Obj = operations[name]()
        return result

    def _check_auth(self) -> None:
        header = self.headers.get("Authorization", "")
        shop_id = secret = ""
        if header.startswith("Basic "):
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                shop_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        config = self.server.sandbox.config
        if (shop_id, secret) != (config["shop_id"], config["secret_key"]):
            raise YooKassaError(401, "invalid_credentials", "Authentication by given credentials failed")

    # --- the confirmation page ------------------------------------------------------------

    def _page(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        state = self.server.sandbox.state
        order = query.get("orderId", "")
        with state.lock:
            try:
                payment = state.payment(order)
            except YooKassaError:
                self._html(404, pages.message("No such payment."))
                return
            if path == "/payments/3ds":
                if method == "GET":
                    self._html(200, pages.three_d_secure(order))
                    return
                action = dict(parse_qsl(body.decode("utf-8", "replace"))).get("action")
                state.authenticate(order, passed=action == "complete")
                self._redirect(payment.get("confirmation", {}).get("return_url") or "/")
                return
            if method == "GET":
                if payment["status"] != "pending":
                    self._html(200, pages.message("This payment is already done."))
                else:
                    self._html(200, pages.confirm_form(payment))
                return
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
            outcome, error = pay(self.server.sandbox, order, form)
            if outcome == "invalid":
                self._html(200, pages.confirm_form(payment, error))
            elif outcome == "requires_action":
                self._redirect(f"/payments/3ds?orderId={order}")
            elif outcome == "unavailable":
                self._html(409, pages.message(error or "Unavailable."))
            else:
                self._redirect(payment["confirmation"]["return_url"])

    # --- answers --------------------------------------------------------------------------

    def _redirect(self, location: str) -> None:
        self._send(303, b"", "text/plain", {"Location": location})

    def _html(self, status: int, html: str) -> None:
        self._send(status, html.encode("utf-8"), "text/html; charset=utf-8")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def pay(sandbox: YooKassaSandbox, order: str, form: dict[str, str]) -> tuple[str, str | None]:
    """Pay a page as its form does: ("succeeded"|"requires_action"|"declined"|"invalid"|"unavailable", message)."""
    number = normalize(form.get("card_number", ""))
    expiry = parse_expiry(form.get("exp", ""))
    cvc = form.get("cvc", "").strip()
    if expiry is None:
        return "invalid", "Expiry date is incorrect."
    if not cvc.isdigit() or len(cvc) not in (3, 4):
        return "invalid", "CVC is incorrect."
    with sandbox.state.lock:
        return sandbox.state.pay(order, number=number, expiry=expiry)
