"""The YooKassa sandbox as a separate process for tests, its control API, and gateway factories."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from payments.gateways.base import CheckoutRequest, OffSessionCharge
from payments.gateways.yookassa.gateway import YooKassaGateway
from payments.sandbox.yookassa.app import DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID
from payments.tests.sandbox_helpers import http, wait_until

REPO = Path(__file__).resolve().parents[2]
VIEWER_EMAIL = "viewer@example.com"


class YooKassaProcess:
    """A running `python -m payments.sandbox.yookassa` and its control API."""

    def __init__(self, port: int, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_base = self.base_url + "/v3"

    def control(
        self, verb: str, path: str, payload: Any = None, /, *, expect: int | None = 200, **query: str
    ) -> Any:
        """Call the control API and return its JSON."""
        suffix = "?" + urlencode(query) if query else ""
        status, _, body = http(verb, f"{self.base_url}/_sandbox{path}{suffix}", payload=payload)
        if expect is not None:
            assert status == expect, body
        return json.loads(body)

    def api(
        self, method: str, path: str, *, secret: str = DEFAULT_SECRET_KEY, **kwargs: Any
    ) -> tuple[int, Any]:
        """Call the sandbox's API directly with HTTP Basic (as YooKassa's shop), returning status and JSON."""
        import base64

        token = base64.b64encode(f"{DEFAULT_SHOP_ID}:{secret}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", **kwargs.pop("headers", {})}
        status, _, body = http(method, self.api_base + path, headers=headers, **kwargs)
        return status, json.loads(body)

    def fault(self, **spec: Any) -> Any:
        """Add a fault (see docs/sandbox.md)."""
        return self.control("POST", "/faults", spec)

    def requests(self, **query: str) -> list[dict[str, Any]]:
        """Return the API requests the sandbox received."""
        found: list[dict[str, Any]] = self.control("GET", "/requests", None, expect=200, **query)
        return found

    def pay(self, payment_id: str, card_number: str, *, expect: int | None = None) -> Any:
        """Pay a confirmation page without its form (the same code path)."""
        card = {"card_number": card_number, "exp": "12 / 30", "cvc": "123"}
        return self.control("POST", f"/payments/{payment_id}/pay", card, expect=expect)


def free_port() -> int:
    """Return a port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_sandbox_process() -> Iterator[YooKassaProcess]:
    """Run the YooKassa sandbox as its own process (short notification retries) until the generator closes.

    Test modules wrap it in a module-scoped fixture and reset the sandbox before each test
    (`fresh`): one process per module, nothing carried from one test to the next.
    """
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "payments.sandbox.yookassa",
            "--port",
            str(port),
            "--webhook-retry-base",
            "0.05",
            "--webhook-retry-cap",
            "0.2",
            "--log-level",
            "WARNING",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    sandbox = YooKassaProcess(port, process)

    def healthy() -> bool:
        try:
            return http("GET", sandbox.base_url + "/_sandbox/health")[0] == 200
        except OSError:
            return False

    try:
        wait_until(healthy, timeout=20, interval=0.05)
        yield sandbox
    finally:
        process.terminate()
        process.wait(timeout=10)


def fresh(sandbox: YooKassaProcess) -> YooKassaProcess:
    """Return the sandbox after forgetting every object, key, fault and notification."""
    sandbox.control("POST", "/reset")
    return sandbox


def make_gateway(sandbox: YooKassaProcess, **overrides: Any) -> YooKassaGateway:
    """Return a gateway on the sandbox with test-sized retries (no real pauses)."""
    options: dict[str, Any] = {
        "shop_id": DEFAULT_SHOP_ID,
        "secret_key": DEFAULT_SECRET_KEY,
        "api_base": sandbox.api_base,
        "timeout": 5,
        "max_retries": 2,
        "sleep": lambda seconds: None,
    }
    options.update(overrides)
    return YooKassaGateway(**options)


def checkout_request(
    *, mode: str = "payment", key: str = "checkout:1", amount: int = 39900, autopay: bool = True
) -> CheckoutRequest:
    """Return a checkout of the Monthly tariff for one viewer."""
    return CheckoutRequest(
        mode=mode,  # type: ignore[arg-type]
        customer_id="ykcus_viewer",
        amount=amount if mode == "payment" else None,
        currency="RUB",
        product_name="Monthly" if mode == "payment" else None,
        client_reference_id="subscription-1",
        metadata={"checkout_id": "1", "payment_id": "1"},
        save_payment_method=autopay,
        success_url="http://127.0.0.1:9/checkout/result/",
        cancel_url="http://127.0.0.1:9/checkout/cancel/",
        expires_at=None,
        locale="ru",
        idempotency_key=key,
        receipt_email=VIEWER_EMAIL,
    )


def renewal(method_id: str, *, key: str = "renewal:2", amount: int = 39900) -> OffSessionCharge:
    """Return the off-session charge of one renewal."""
    return OffSessionCharge(
        customer_id="ykcus_viewer",
        payment_method_id=method_id,
        amount=amount,
        currency="RUB",
        description="Monthly",
        metadata={"payment_id": "2"},
        idempotency_key=key,
        receipt_email=VIEWER_EMAIL,
    )
