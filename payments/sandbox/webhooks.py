"""Delivering events to the webhook endpoint, signed and retried as Stripe does.

A background thread claims due deliveries and posts each from a small pool, so one
slow receiver does not hold up the rest. A delivery succeeds on any 2xx answer;
anything else (including a redirect or a dropped connection) is retried after
`base * 2**(attempt-1)` seconds, at most `cap`, until `max_attempts`. The same
thread expires Checkout Sessions whose time is up and forgets day-old
idempotency keys.
"""

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from payments.sandbox.checkout import expire_due_sessions
from payments.sandbox.events import with_pending_webhooks

if TYPE_CHECKING:
    from payments.sandbox.app import Sandbox

logger = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
_HOUSEKEEPING_EVERY = 1.0
_IDEMPOTENCY_KEY_LIFETIME = 24 * 60 * 60


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Return the `Stripe-Signature` header for `payload`: HMAC-SHA256 of "<t>.<body>"."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # Stripe does not follow redirects from a webhook endpoint: a 3xx is a failed delivery.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class WebhookWorker:
    """The thread that sends queued events to the configured webhook URL."""

    def __init__(self, sandbox: "Sandbox", *, pool_size: int = 4) -> None:
        self._sandbox = sandbox
        self._wakeup = threading.Condition()
        self._woken = False
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="sandbox-webhook")
        self._pool_size = pool_size
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._last_housekeeping = 0.0

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering; deliveries under way are abandoned and retried after a restart."""
        self.wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Look for due deliveries now (an event was recorded, or the settings changed)."""
        with self._wakeup:
            self._woken = True
            self._wakeup.notify_all()

    def _run(self) -> None:
        sandbox = self._sandbox
        while not sandbox.stopping.is_set():
            try:
                wait = self._tick()
            except Exception:
                logger.exception("Webhook worker failed; trying again shortly")
                wait = 1.0
            with self._wakeup:
                if not self._woken:
                    self._wakeup.wait(wait)
                self._woken = False

    def _tick(self) -> float:
        sandbox = self._sandbox
        now = time.time()
        if now - self._last_housekeeping >= _HOUSEKEEPING_EVERY:
            self._last_housekeeping = now
            expire_due_sessions(sandbox.ctx())
            sandbox.store.forget_keys_before(now - _IDEMPOTENCY_KEY_LIFETIME)
        config = sandbox.config
        if config.webhooks_paused or not config.webhook_url:
            return _HOUSEKEEPING_EVERY
        for delivery in sandbox.store.claim_due_deliveries(now, self._pool_size * 2):
            self._pool.submit(self._deliver, delivery)
        due = sandbox.store.next_delivery_due()
        if due is None:
            return _HOUSEKEEPING_EVERY
        return max(0.0, min(_HOUSEKEEPING_EVERY, due - time.time()))

    def _deliver(self, delivery: dict[str, Any]) -> None:
        sandbox = self._sandbox
        config = sandbox.config
        url = config.webhook_url
        attempt_number = len(delivery["attempts"]) + 1
        event = sandbox.store.get(delivery["event"], "event")
        if event is None or not url:
            sandbox.store.finish_attempt(
                delivery["id"],
                attempt={
                    "attempt": attempt_number,
                    "at": time.time(),
                    "url": url,
                    "status_code": None,
                    "error": "nothing to deliver",
                    "duration_ms": 0.0,
                },
                status="failed",
                next_attempt_at=time.time(),
            )
            return
        with_pending_webhooks(sandbox.ctx(), [event])
        payload = json.dumps(event, indent=2).encode("utf-8")
        # Signed with the real clock: receivers check the timestamp against theirs.
        header = signature_header(payload, config.webhook_secret, int(time.time()))
        request = urllib.request.Request(  # noqa: S310 - the developer-configured webhook endpoint
            url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": header,
                "Cache-Control": "no-cache",
            },
        )
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        response_text = ""
        try:
            with _opener.open(request, timeout=config.webhook_timeout) as response:
                status_code = response.status
                response_text = response.read(500).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status_code = exc.code
            response_text = exc.read(500).decode("utf-8", "replace")
        except Exception as exc:  # connection refused, time-out, reset: all failed deliveries
            error = f"{type(exc).__name__}: {exc}"
        attempt = {
            "attempt": attempt_number,
            "at": time.time(),
            "url": url,
            "status_code": status_code,
            "error": error,
            "response_body": response_text,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "retry_in": None,
        }
        if status_code is not None and 200 <= status_code < 300:
            status, next_at = "succeeded", time.time()
        elif attempt_number >= config.webhook_max_attempts:
            status, next_at = "failed", time.time()
        else:
            delay = min(config.webhook_retry_base * 2 ** (attempt_number - 1), config.webhook_retry_cap)
            status, next_at = "pending", time.time() + delay
            attempt["retry_in"] = delay
        logger.info(
            "Webhook %s %s attempt %d: %s",
            delivery["type"],
            delivery["event"],
            attempt_number,
            status_code or error,
        )
        sandbox.store.finish_attempt(delivery["id"], attempt=attempt, status=status, next_attempt_at=next_at)
        self.wake()
