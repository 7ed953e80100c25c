"""Helpers for the Stripe sandbox's tests: an SDK client, the control API, a webhook receiver."""

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import stripe

from payments.sandbox import SandboxHandle

TEST_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_test_sandbox_secret"


def make_client(
    sandbox: SandboxHandle, *, timeout: float | None = None, retries: int = 0
) -> stripe.StripeClient:
    """Return an SDK client talking to the sandbox, as the billing service's gateway builds it."""
    http_client = stripe.RequestsClient(timeout=timeout) if timeout is not None else None
    return stripe.StripeClient(
        TEST_KEY,
        base_addresses={"api": sandbox.base_url},
        max_network_retries=retries,
        http_client=http_client,
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def http(
    method: str,
    url: str,
    *,
    form: dict[str, str] | None = None,
    payload: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """Send one request without following redirects; return status, headers and body."""
    data = None
    all_headers = dict(headers or {})
    if form is not None:
        data = urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif payload is not None:
        data = json.dumps(payload).encode()
        all_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310 - local http only
    try:
        with _opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


class Control:
    """The sandbox's control API."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.base = sandbox.base_url + "/_sandbox"

    def get(self, endpoint: str, /, **query: str) -> Any:
        """GET a control endpoint and return its JSON."""
        suffix = "?" + urlencode(query) if query else ""
        status, _, body = http("GET", self.base + endpoint + suffix)
        assert status == 200, body
        return json.loads(body)

    def post(self, path: str, payload: Any = None, *, expect: int | None = 200) -> Any:
        """POST JSON to a control endpoint and return its JSON."""
        status, _, body = http("POST", self.base + path, payload=payload if payload is not None else {})
        if expect is not None:
            assert status == expect, body
        return json.loads(body)

    def delete(self, path: str) -> Any:
        """DELETE a control resource."""
        status, _, body = http("DELETE", self.base + path)
        assert status == 200, body
        return json.loads(body)

    def pay(self, session_id: str, card_number: str, *, expect: int | None = None) -> Any:
        """Pay a Checkout Session without the HTML form."""
        return self.post(f"/checkout/{session_id}/pay", {"card_number": card_number}, expect=expect)

    def requests(self, **query: str) -> list[dict[str, Any]]:
        """Return the API requests the sandbox received."""
        data: list[dict[str, Any]] = self.get("/requests", **query)["data"]
        return data

    def objects(self, type_: str) -> list[dict[str, Any]]:
        """Return every object of a type."""
        data: list[dict[str, Any]] = self.get("/objects", type=type_)["data"]
        return data


def wait_until(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Return the predicate's first truthy value, failing after `timeout` seconds.

    The deadline only bounds a failing test: a busy machine makes a passing one wait longer.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class WebhookReceiver:
    """A local endpoint that records webhook posts and answers with a scripted list of statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self._statuses = list(statuses or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    receiver.received.append(
                        {
                            "body": body,
                            "headers": dict(self.headers),
                            "status": status,
                            "at": time.monotonic(),
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/stripe/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def events(self) -> list[dict[str, Any]]:
        """Return the events received with a 2xx answer."""
        with self._lock:
            return [json.loads(item["body"]) for item in self.received if 200 <= item["status"] < 300]


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[str] = []
        self.buttons: list[str] = []
        self.forms: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name"):
            self.inputs.append(str(attributes["name"]))
        elif tag == "form":
            self.forms.append(attributes)
        elif tag == "a" and attributes.get("href"):
            self.links.append(str(attributes["href"]))
        elif tag == "button":
            self._in_button = True
            self.buttons.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button:
            self.buttons[-1] += data


def read_form(html: str) -> _FormReader:
    """Return the inputs, buttons, forms and links of a page."""
    reader = _FormReader()
    reader.feed(html)
    return reader


def payment_session_params(
    customer_id: str | None, *, amount: int = 499, save_card: bool = True, payment_id: str = "pay_1"
) -> dict[str, Any]:
    """Return Checkout parameters like those the gateway sends for a subscription's first payment."""
    params: dict[str, Any] = {
        "mode": "payment",
        "client_reference_id": payment_id,
        "metadata": {"payment_id": payment_id},
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": amount,
                    "product_data": {"name": "Cinema Monthly"},
                },
                "quantity": 1,
            }
        ],
        "payment_intent_data": {"metadata": {"payment_id": payment_id}},
        "success_url": "http://billing.test/checkout/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://billing.test/checkout/cancel",
        "locale": "en",
    }
    if customer_id:
        params["customer"] = customer_id
    if save_card:
        params["payment_intent_data"]["setup_future_usage"] = "off_session"
    return params
