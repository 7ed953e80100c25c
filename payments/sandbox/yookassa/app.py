"""Starting and stopping the YooKassa sandbox, as a process or inside a test."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from payments.sandbox.app import SandboxRefused, ensure_not_production
from payments.sandbox.faults import FaultBook
from payments.sandbox.request_log import RequestLog
from payments.sandbox.yookassa.notifier import Notifier
from payments.sandbox.yookassa.server import YooKassaHTTPServer
from payments.sandbox.yookassa.state import State

DEFAULT_SHOP_ID = "100500"
DEFAULT_SECRET_KEY = "test_sandbox_secret_key"  # noqa: S105 - the sandbox's test key, not a credential
DEFAULT_PORT = 12112


class YooKassaSandbox:
    """One sandbox: its objects, settings, HTTP server and notifier."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        shop_id: str = DEFAULT_SHOP_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        public_url: str | None = None,
        webhook_url: str | None = None,
        webhook_retry_base: float = 0.05,
        webhook_retry_cap: float = 1.0,
        webhook_max_attempts: int = 8,
        webhook_timeout: float = 5.0,
        timeout_hold_seconds: float = 5.0,
    ) -> None:
        try:
            ensure_not_production()
        except SandboxRefused as exc:
            raise SandboxRefused(str(exc).replace("Stripe", "YooKassa")) from exc
        self.config: dict[str, Any] = {
            "shop_id": shop_id,
            "secret_key": secret_key,
            "webhook_url": webhook_url,
            "webhooks_paused": False,
            "webhook_retry_base": webhook_retry_base,
            "webhook_retry_cap": webhook_retry_cap,
            "webhook_max_attempts": webhook_max_attempts,
            "webhook_timeout": webhook_timeout,
            "latency_ms": 0,
            "timeout_hold_seconds": timeout_hold_seconds,
        }
        self.initial_config = dict(self.config)
        self.faults = FaultBook()
        self.requests = RequestLog()
        self.stopping = threading.Event()
        self.httpd = YooKassaHTTPServer((host, port), self)
        url_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - only compared
        self.base_url = f"http://{url_host}:{self.httpd.server_address[1]}"
        self.api_base = f"{self.base_url}/v3"
        self.notifier = Notifier(self.config)
        self.state = State(
            shop_id=shop_id, public_url=(public_url or self.base_url).rstrip("/"), notify=self.notifier.send
        )
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Serve in this thread until stopped."""
        self.notifier.start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self._shut()

    def start_in_thread(self) -> None:
        """Serve from a background thread."""
        self.notifier.start()
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="yookassa-sandbox",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and notifying, releasing held connections."""
        self.stopping.set()
        self.httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._shut()

    def _shut(self) -> None:
        self.stopping.set()
        self.notifier.stop()
        self.httpd.server_close()

    def reset(self) -> None:
        """Forget objects, keys, notifications, requests and faults; restore the start-up settings."""
        self.faults.clear()
        self.requests.clear()
        self.notifier.clear()
        self.state.reset()
        self.config.clear()
        self.config.update(self.initial_config)
        self.notifier.wake()


class YooKassaSandboxHandle:
    """A sandbox running in a thread of this process."""

    def __init__(self, sandbox: YooKassaSandbox) -> None:
        self.sandbox = sandbox
        self.base_url = sandbox.base_url
        self.api_base = sandbox.api_base

    def url(self, path: str) -> str:
        """Return the absolute address of `path` on the sandbox."""
        return self.base_url + path

    def stop(self) -> None:
        """Stop the sandbox."""
        self.sandbox.stop()

    def __enter__(self) -> YooKassaSandboxHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_yookassa_sandbox(**options: Any) -> YooKassaSandboxHandle:
    """Start a YooKassa sandbox in a background thread (a free port by default) and return its handle."""
    sandbox = YooKassaSandbox(**options)
    sandbox.start_in_thread()
    return YooKassaSandboxHandle(sandbox)
