"""The HTTP front of the sandbox: Stripe's API, the hosted pages and the control API.

Every API request goes through the same steps as at Stripe: faults and latency
(the sandbox's own addition), then the secret key, the form-encoded parameters,
the idempotency key, and the operation, all in one transaction so a replayed key
never creates anything.
"""

import base64
import binascii
import json
import logging
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from payments.sandbox import api, control, hosted, objects
from payments.sandbox.errors import StripeError
from payments.sandbox.faults import RATE_LIMIT_BODY, SERVER_ERROR_BODY, Fault
from payments.sandbox.forms import parse_form

if TYPE_CHECKING:
    from payments.sandbox.app import Sandbox

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

_IDEMPOTENT_STATUSES = (200, 402)


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its sandbox."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        super().__init__(address, SandboxRequestHandler)


class _Dropped(Exception):
    """The request is to end without any answer (a simulated time-out)."""


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Serve one connection."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait 40 ms for each answer.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    server_version = "stripe-sandbox"
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
        """Log through `logging`, quietly: tests make thousands of requests."""
        logger.debug("%s - %s", self.address_string(), format % args)

    # Routing

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        body = self._read_body()
        try:
            if path.startswith("/v1/"):
                self._api(method, path, url.query, body)
            elif path.startswith("/_sandbox/"):
                status, payload = control.handle(self.server.sandbox, method, path, url.query, body)
                self._send_json(status, payload)
            elif path.startswith(("/checkout/", "/authenticate/")):
                page = hosted.handle(self.server.sandbox, method, path, body)
                headers = dict(page.headers)
                if page.location:
                    headers["Location"] = page.location
                self._send(page.status, page.html.encode("utf-8"), "text/html; charset=utf-8", headers)
            elif path == "/" and method == "GET":
                self._send_json(
                    200, {"service": "Stripe sandbox of the billing service", "docs": "docs/sandbox.md"}
                )
            else:
                self._send_json(404, api.unrecognized(method, path)[1])
        except _Dropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            logger.exception("Sandbox failed on %s %s", method, path)
            self._send_json(
                500, {"error": {"type": "api_error", "message": "The sandbox failed; see its log."}}
            )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # The Stripe API

    def _api(self, method: str, path: str, query: str, body: bytes) -> None:
        sandbox = self.server.sandbox
        request_id = objects.new_id("req", 14)
        idempotency_key = self.headers.get("Idempotency-Key") or None
        started = time.monotonic()
        entry: Obj = {
            "id": request_id,
            "method": method,
            "path": path,
            "query": query,
            "idempotency_key": idempotency_key,
            "status": None,
            "replayed": False,
            "fault": None,
            "latency_ms": 0,
            "time": time.time(),
            "duration_ms": None,
        }
        # Logged on arrival, so a test sees a request its fault still holds; filled in as it goes.
        sandbox.requests.add(entry)
        try:
            decision = sandbox.faults.decide(method, path)
            delay_ms = sandbox.config.latency_ms + decision.latency_ms
            entry["latency_ms"] = delay_ms
            if delay_ms:
                sandbox.stopping.wait(delay_ms / 1000)
            fault = decision.fault
            if fault is not None and fault.when == "before":
                entry["fault"] = fault.mode
                entry["status"] = self._inject(fault, request_id)
                return
            status, payload, headers = self._execute(method, path, query, body, request_id, idempotency_key)
            entry["replayed"] = headers.get("Idempotent-Replayed") == "true"
            if fault is not None:
                # Carried out, but the client never learns it: the lost-answer case.
                entry["fault"] = f"{fault.mode} after"
                entry["status"] = self._inject(fault, request_id)
                return
            entry["status"] = status
            self._send(status, payload.encode("utf-8"), "application/json", headers)
        finally:
            entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)

    def _inject(self, fault: Fault, request_id: str) -> int | None:
        sandbox = self.server.sandbox
        if fault.mode == "timeout":
            sandbox.stopping.wait(fault.hold_seconds or sandbox.config.timeout_hold_seconds)
            raise _Dropped
        status, body = (
            (429, RATE_LIMIT_BODY) if fault.mode == "rate_limit" else (fault.status, SERVER_ERROR_BODY)
        )
        self._send(
            status, json.dumps(body, indent=2).encode(), "application/json", {"Request-Id": request_id}
        )
        return status

    def _execute(
        self, method: str, path: str, query: str, body: bytes, request_id: str, idempotency_key: str | None
    ) -> tuple[int, str, dict[str, str]]:
        sandbox = self.server.sandbox
        headers = {
            "Request-Id": request_id,
            "Stripe-Version": self.headers.get("Stripe-Version") or sandbox.config.api_version,
        }
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        auth_error = self._auth_error()
        if auth_error is not None:
            return 401, json.dumps(auth_error.body(), indent=2), headers
        route = api.find_route(method, path)
        if route is None:
            status, payload = api.unrecognized(method, path)
            return status, json.dumps(payload, indent=2), headers
        handler, object_id = route
        # Only POSTs are idempotent at Stripe; a key on a GET is ignored.
        key = idempotency_key if method == "POST" else None
        ctx = sandbox.ctx(request_id=request_id, idempotency_key=key)
        try:
            raw = query if method == "GET" else body.decode("utf-8")
            params = parse_form(parse_qsl(raw, keep_blank_values=True))
            canonical = json.dumps(params, sort_keys=True)
            with sandbox.store.transaction():
                if key is not None:
                    stored = sandbox.store.idempotent_result(key)
                    if stored is not None:
                        if (stored["method"], stored["path"], stored["params"]) != (method, path, canonical):
                            raise StripeError(
                                400,
                                "Keys for idempotent requests can only be used with the same parameters they "
                                f"were first used with. Try using a key other than '{key}' if you meant to "
                                "execute a different request.",
                                type_="idempotency_error",
                            )
                        headers["Idempotent-Replayed"] = "true"
                        headers["Original-Request"] = stored["request_id"]
                        return int(stored["status"]), str(stored["body"]), headers
                status, payload = handler(ctx, params, object_id)
                text = json.dumps(payload, indent=2)
                # Stripe keeps the result once the endpoint ran; refused parameters keep nothing.
                if key is not None and status in _IDEMPOTENT_STATUSES:
                    sandbox.store.remember_result(
                        key=key,
                        method=method,
                        path=path,
                        params=canonical,
                        status=status,
                        body=text,
                        request_id=request_id,
                        now=time.time(),
                    )
                return status, text, headers
        except UnicodeDecodeError:
            error = StripeError(400, "The request body is not valid UTF-8.")
            return 400, json.dumps(error.body(), indent=2), headers
        except StripeError as exc:
            return exc.status, json.dumps(exc.body(), indent=2), headers

    def _auth_error(self) -> StripeError | None:
        header = self.headers.get("Authorization", "")
        key = ""
        if header.startswith("Bearer "):
            key = header[len("Bearer ") :].strip()
        elif header.startswith("Basic "):
            try:
                key = base64.b64decode(header[len("Basic ") :]).decode().split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            return StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not key.startswith("sk_test_"):
            # Never echo a live key back: show only its kind and last four characters.
            masked = key.split("_", 2)[0] + "_***" + key[-4:] if len(key) > 8 else "***"
            return StripeError(
                401,
                f"Invalid API Key provided: {masked}. The Stripe sandbox accepts test secret keys (sk_test_...) only.",
            )
        return None

    # Writing answers

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, indent=2).encode("utf-8"), "application/json", {})

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
