"""A receiver of events for tests: a local HTTP server, and the receiver example of docs/events.md."""

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def docs_receiver_namespace() -> dict[str, Any]:
    """Run the receiver code block of docs/events.md and return what it defines.

    The tests use exactly the code the documentation shows, so the two cannot drift apart.
    """
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    (code,) = [block for block in blocks if block.startswith("# receiver.py")]
    namespace: dict[str, Any] = {"__name__": "docs_receiver"}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    status: int
    at: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalReceiver:
    """An HTTP server on 127.0.0.1 recording every POST; `answer` decides the status.

    It can be stopped and started again on the same port, to play a receiver that is down
    for a while (connections refused) and then back.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        # Called with the body and the request's (case-insensitive) headers.
        self.answer: Callable[[bytes, Any], int] = lambda body, headers: 200
        # What it says back besides the status (what a probed internal service would reveal).
        self.answer_body = b""
        self.delay = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/billing-events"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(receiver.delay)
                status = receiver.answer(body, self.headers)
                with receiver._lock:
                    receiver.received.append(Received(body, dict(self.headers), status, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Length", str(len(receiver.answer_body)))
                self.end_headers()
                self.wfile.write(receiver.answer_body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
