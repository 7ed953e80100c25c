"""Starting and stopping the sandbox, as a process or inside a test."""

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from payments.sandbox.context import DEFAULT_API_VERSION, Ctx, SandboxConfig
from payments.sandbox.faults import FaultBook
from payments.sandbox.request_log import RequestLog
from payments.sandbox.server import SandboxHTTPServer
from payments.sandbox.store import Store
from payments.sandbox.webhooks import WebhookWorker


class SandboxRefused(RuntimeError):
    """The sandbox was asked to start where it must never run."""


def ensure_not_production(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to run next to production settings: a fake Stripe there would take real orders."""
    settings_module = environ.get("DJANGO_SETTINGS_MODULE", "")
    if settings_module.endswith(".production"):
        raise SandboxRefused(
            f"The Stripe sandbox refuses to start with production settings "
            f"(DJANGO_SETTINGS_MODULE={settings_module}). It is for development and tests only."
        )


class Sandbox:
    """One sandbox: its state, its settings, its HTTP server and its webhook worker."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_path: str | Path | None = None,
        config: SandboxConfig | None = None,
    ) -> None:
        ensure_not_production()
        self.config = config or SandboxConfig()
        self.store = Store(state_path)
        self.faults = FaultBook()
        self.requests = RequestLog()
        self.stopping = threading.Event()
        self.httpd = SandboxHTTPServer((host, port), self)
        bound_port = self.httpd.server_address[1]
        url_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - only compared
        self.base_url = f"http://{url_host}:{bound_port}"
        if not self.config.public_url:
            self.config.public_url = self.base_url
        self.initial_config = self.config.copy()
        self.webhooks = WebhookWorker(self)
        self._thread: threading.Thread | None = None

    def ctx(self, *, request_id: str | None = None, idempotency_key: str | None = None) -> Ctx:
        """Return the context for one operation."""
        return Ctx(
            store=self.store,
            config=self.config,
            wake_webhooks=self.webhooks.wake,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )

    def serve_forever(self) -> None:
        """Serve in this thread until `stop()`."""
        self.webhooks.start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self._shut()

    def start_in_thread(self) -> None:
        """Serve from a background thread."""
        self.webhooks.start()
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="stripe-sandbox", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and delivering, releasing held connections, and close the state."""
        self.stopping.set()
        self.httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._shut()

    def _shut(self) -> None:
        self.stopping.set()
        self.webhooks.stop()
        self.httpd.server_close()
        self.store.close()

    def reset(self) -> None:
        """Forget all objects, keys, deliveries, requests and faults; restore the start-up settings."""
        self.faults.clear()
        self.store.reset()
        self.requests.clear()
        self.config.restore(self.initial_config)
        self.webhooks.wake()


class SandboxHandle:
    """A sandbox running in a thread of the current process (see `start_sandbox`)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.base_url = sandbox.base_url

    def url(self, path: str) -> str:
        """Return the absolute address of `path` on the sandbox."""
        return self.base_url + path

    def stop(self) -> None:
        """Stop the sandbox."""
        self.sandbox.stop()

    def __enter__(self) -> "SandboxHandle":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_sandbox(
    *,
    webhook_url: str | None = None,
    webhook_secret: str = "whsec_sandbox",  # noqa: S107 - a test signing secret, not a credential
    state_path: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    public_url: str | None = None,
    api_version: str = DEFAULT_API_VERSION,
    webhook_retry_base: float = 0.05,
    webhook_retry_cap: float = 1.0,
    webhook_max_attempts: int = 8,
    webhook_timeout: float = 5.0,
    timeout_hold_seconds: float = 5.0,
    clock_file: str | Path | None = None,
) -> SandboxHandle:
    """Start a sandbox in a background thread (a free port by default) and return its handle.

    The defaults suit tests: state in memory, webhook retries after 50 ms doubling up
    to 1 s. Use `handle.base_url` as the SDK's API base and call `handle.stop()`
    (or use the handle as a context manager) when done. With `clock_file`, Stripe's
    `created` stamps follow the billing clock kept in that file (core/clock.py).
    """
    config = SandboxConfig(
        public_url=public_url or "",
        api_version=api_version,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        webhook_retry_base=webhook_retry_base,
        webhook_retry_cap=webhook_retry_cap,
        webhook_max_attempts=webhook_max_attempts,
        webhook_timeout=webhook_timeout,
        timeout_hold_seconds=timeout_hold_seconds,
        clock_file=str(clock_file) if clock_file else None,
    )
    sandbox = Sandbox(host=host, port=port, state_path=state_path, config=config)
    sandbox.start_in_thread()
    return SandboxHandle(sandbox)
