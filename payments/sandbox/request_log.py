"""The API requests the sandbox received, for tests to count what really arrived."""

import threading
from collections import deque
from typing import Any

MAX_ENTRIES = 20_000


class RequestLog:
    """A bounded, thread-safe list of received API requests, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)

    def add(self, entry: dict[str, Any]) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        """Forget every request."""
        with self._lock:
            self._entries.clear()

    def select(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        path_prefix: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return the recorded requests matching every filter given."""
        with self._lock:
            entries = list(self._entries)
        return [
            entry
            for entry in entries
            if (method is None or entry["method"] == method.upper())
            and (path is None or entry["path"] == path)
            and (path_prefix is None or entry["path"].startswith(path_prefix))
            and (idempotency_key is None or entry["idempotency_key"] == idempotency_key)
        ]
