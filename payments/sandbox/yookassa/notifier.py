"""Notifications POSTed to the configured URL, retried with exponential backoff until a 2xx.

YooKassa sends `{"type": "notification", "event", "object"}` with no signature; the sandbox
does the same. Each delivery and its attempts are kept for the control API.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

Obj = dict[str, Any]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Notifier:
    """Queue notifications and deliver them from one background thread."""

    def __init__(self, config: Obj) -> None:
        self.config = (
            config  # shared with the sandbox: webhook_url, retry base/cap, attempts, timeout, paused
        )
        self._lock = threading.Condition()
        self._deliveries: list[Obj] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yookassa-notifier", daemon=True)
        self._opener = urllib.request.build_opener(_NoRedirects)

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        self._thread.join(timeout=5)

    def send(self, event: str, obj: Obj) -> None:
        """Queue a notification about `obj` (a snapshot is taken now), if a URL is configured."""
        url = self.config.get("webhook_url")
        if not url:
            return
        body = {"type": "notification", "event": event, "object": copy.deepcopy(obj)}
        with self._lock:
            self._deliveries.append(
                {
                    "id": f"ntf_{next(self._ids)}",
                    "event": event,
                    "object_id": obj.get("id"),
                    "url": url,
                    "body": body,
                    "status": "pending",
                    "attempts": [],
                    "next_at": time.monotonic(),
                }
            )
            self._lock.notify_all()

    def deliveries(self, event: str | None = None) -> list[Obj]:
        """Return every delivery (optionally of one event type), oldest first."""
        with self._lock:
            return [
                {k: copy.deepcopy(v) for k, v in d.items() if k != "next_at"}
                for d in self._deliveries
                if event is None or d["event"] == event
            ]

    def clear(self) -> None:
        """Forget every delivery."""
        with self._lock:
            self._deliveries.clear()

    def wake(self) -> None:
        """Look at the queue again (after the settings changed)."""
        with self._lock:
            self._lock.notify_all()

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                due = None
                wait = 0.5
                if not self.config.get("webhooks_paused"):
                    now = time.monotonic()
                    for delivery in self._deliveries:
                        if delivery["status"] == "pending":
                            if delivery["next_at"] <= now:
                                due = delivery
                                delivery["status"] = "in_flight"
                                break
                            wait = min(wait, delivery["next_at"] - now)
                if due is None:
                    self._lock.wait(timeout=max(wait, 0.01))
                    continue
            self._attempt(due)

    def _attempt(self, delivery: Obj) -> None:
        payload = json.dumps(delivery["body"]).encode()
        request = urllib.request.Request(  # noqa: S310 - a configured http(s) URL
            delivery["url"], data=payload, method="POST", headers={"Content-Type": "application/json"}
        )
        attempt: Obj = {"at": time.time(), "status_code": None, "error": None}
        try:
            # The URL is the one the developer configured (http or https only, checked on the way in).
            with self._opener.open(request, timeout=float(self.config.get("webhook_timeout", 5.0))) as answer:
                attempt["status_code"] = answer.status
        except urllib.error.HTTPError as exc:
            attempt["status_code"] = exc.code
        except (OSError, ValueError) as exc:
            attempt["error"] = str(exc)
        with self._lock:
            delivery["attempts"].append(attempt)
            code = attempt["status_code"]
            if code is not None and 200 <= code < 300:
                delivery["status"] = "succeeded"
            elif len(delivery["attempts"]) >= int(self.config.get("webhook_max_attempts", 8)):
                delivery["status"] = "failed"
            else:
                base = float(self.config.get("webhook_retry_base", 0.05))
                cap = float(self.config.get("webhook_retry_cap", 1.0))
                delivery["status"] = "pending"
                delivery["next_at"] = time.monotonic() + min(base * 2 ** (len(delivery["attempts"]) - 1), cap)
            self._lock.notify_all()
