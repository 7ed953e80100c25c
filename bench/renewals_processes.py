"""The processes bench/renewals runs next to itself: the Stripe sandbox and Celery workers.

Each runs in a session of its own, so a Ctrl-C in the terminal reaches the benchmark only,
which then stops them in order.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.cpu import process_cpu_seconds
from bench.server import HOST, free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


def _stop(process: subprocess.Popen[Any], signum: int = signal.SIGTERM) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


class SandboxProcess:
    """`python -m payments.sandbox` on a free port, with a client of its control API."""

    def __init__(self, log_path: Path) -> None:
        self.base_url = f"http://{HOST}:{free_port()}"
        self.log_path = log_path
        port = self.base_url.rsplit(":", 1)[1]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "payments.sandbox",
                    "--host",
                    HOST,
                    "--port",
                    port,
                    "--log-level",
                    "WARNING",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if self.get("/health").get("ok"):
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the Stripe sandbox did not start:\n{log_path.read_text(errors='replace')}"
                )
            time.sleep(0.1)

    def _request(self, method: str, endpoint: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_sandbox{endpoint}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}") | {"_status": exc.code}

    def get(self, endpoint: str, **query: str) -> Any:
        """GET a control endpoint and return its JSON."""
        suffix = f"?{urlencode(query)}" if query else ""
        return self._request("GET", endpoint + suffix)

    def post(self, endpoint: str, payload: Any = None) -> Any:
        """POST JSON to a control endpoint and return its JSON."""
        return self._request("POST", endpoint, payload if payload is not None else {})

    def delete(self, endpoint: str) -> Any:
        """DELETE a control resource."""
        return self._request("DELETE", endpoint)

    def set_latency(self, milliseconds: int) -> None:
        """Delay every API request by `milliseconds`, as a distant Stripe would."""
        self.post("/config", {"latency_ms": milliseconds})

    def api_requests(self) -> list[dict[str, Any]]:
        """Return the API requests received since the log was last cleared, oldest first."""
        data: list[dict[str, Any]] = self.get("/requests", path_prefix="/v1/")["data"]
        return data

    def cpu_seconds(self) -> float:
        """Return the CPU time the sandbox has used so far."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        """Stop the sandbox."""
        _stop(self.process)


class WorkerProcess:
    """A `celery worker` under the current settings module; its last lines are kept."""

    def __init__(self, name: str, *, queue: str, pool: str, concurrency: int) -> None:
        self.name = name
        self.lines: deque[str] = deque(maxlen=200)
        self.error_lines: deque[str] = deque(maxlen=20)
        self.ready = threading.Event()
        self.retries = 0
        self.errors = 0
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                f"--queues={queue}",
                "--loglevel=INFO",
                f"--hostname={name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()
            elif "Retry in" in line:
                self.retries += 1
            elif "ERROR" in line:
                self.errors += 1
                self.error_lines.append(line)

    def wait_ready(self) -> None:
        """Wait until the worker takes tasks; fail with its output if it dies first."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not start:\n{self.tail()}")

    def alive(self) -> bool:
        """Return whether the worker process still runs."""
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """Return the CPU time the worker (and its pool's processes) has used so far."""
        return process_cpu_seconds(self.process.pid)

    def tail(self, lines: int = 40) -> str:
        """Return the worker's last lines of output, after the last errors it logged."""
        errors = "".join(self.error_lines)
        last = "".join(list(self.lines)[-lines:])
        return f"{self.errors} error lines, the last ones:\n{errors}...\n{last}" if errors else last

    def stop(self) -> None:
        """Stop the worker: a warm shutdown first, the whole process group if that hangs."""
        _stop(self.process)
