"""The processes bench/soak runs next to the service, and the ones it kills and restarts.

- `PrivateRedis`: a redis-server of the soak's own on a free port, with no persistence, which
  the soak restarts once. Never the machine's shared Redis on 6379, which other runs use.
- `WorkerCrew`: the Celery workers (bench/renewals_processes.WorkerProcess), any of which
  the soak SIGKILLs and replaces by a fresh one.
- `BeatProcess`: `celery beat`, with the database scheduler the service uses.
- `EventReceiver`: the other services' endpoint for signed events, checking every signature
  and keeping the order in which each subscription's events arrived.

Each process runs in a session of its own, so a Ctrl-C reaches the soak only, which then stops
them in order; each is ended by its own pid, never by name.
"""

import hmac
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.renewals_processes import ROOT, WorkerProcess
from bench.server import HOST, free_port

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20
SHARED_REDIS_PORT = 6379


def _stop(process: subprocess.Popen[Any]) -> None:
    """Stop a process the soak started: SIGTERM, then SIGKILL to its whole session if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


class PrivateRedis:
    """A redis-server of the soak's own on 127.0.0.1, keeping nothing on disk, restartable."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        if self.port == SHARED_REDIS_PORT:  # never, while the shared one listens; refuse all the same
            raise RuntimeError("the soak's Redis must not take the shared Redis's port")
        self.log_path = log_path
        self.restarts = 0
        self.process = self._start()

    def url(self, database: int = 0) -> str:
        """Return the address of one of its databases."""
        return f"redis://{HOST}:{self.port}/{database}"

    def _start(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    "redis-server",
                    "--bind",
                    HOST,
                    "--port",
                    str(self.port),
                    # A restart loses everything, as a Redis with no persistence does.
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(process)
        return process

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        import redis

        client = redis.Redis(host=HOST, port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the soak's redis-server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def restart(self, *, down_seconds: float) -> None:
        """Stop it (losing every queued task), leave it down for a while, and start it again."""
        _stop(self.process)
        time.sleep(down_seconds)
        self.process = self._start()
        self.restarts += 1

    def stop(self) -> None:
        """Stop it."""
        _stop(self.process)


class BeatProcess:
    """`celery beat` under the current settings module (its schedule lives in the database)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=WARNING"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        """Return whether beat still runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop beat."""
        _stop(self.process)


class WorkerCrew:
    """A fixed number of Celery workers, any of which may be killed and replaced.

    Each replacement has a name of its own, so that the worker's log lines say which one ran.
    """

    def __init__(self, size: int, *, queue: str, concurrency: int) -> None:
        self.queue = queue
        self.concurrency = concurrency
        self.kills = 0
        self._started = 0
        self._lock = threading.Lock()
        self.workers = [self._start() for _ in range(size)]
        self.retired: list[WorkerProcess] = []
        for worker in self.workers:
            worker.wait_ready()

    def _start(self) -> WorkerProcess:
        self._started += 1
        return WorkerProcess(
            f"soak-worker-{self._started}", queue=self.queue, pool="threads", concurrency=self.concurrency
        )

    def kill_one(self, chooser: random.Random) -> str:
        """SIGKILL one worker in the middle of whatever it runs, start its replacement; return its name."""
        with self._lock:
            victim = chooser.choice(self.workers)
            os.kill(victim.process.pid, signal.SIGKILL)
            victim.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            replacement = self._start()
            self.workers[self.workers.index(victim)] = replacement
            self.retired.append(victim)
            self.kills += 1
        replacement.wait_ready()
        return victim.name

    def replace_dead(self) -> list[str]:
        """Replace every worker that died on its own (nobody killed it); return what each said last."""
        deaths = []
        with self._lock:
            for index, worker in enumerate(self.workers):
                if not worker.alive():
                    print(f"  worker {worker.name} died on its own (exit {worker.process.returncode}):")
                    print(worker.tail(200))
                    last = worker.lines[-1].strip() if worker.lines else "(no output)"
                    deaths.append(f"{worker.name} exited with {worker.process.returncode}: {last}")
                    self.retired.append(worker)
                    self.workers[index] = self._start()
        return deaths

    @property
    def every_worker(self) -> list[WorkerProcess]:
        return [*self.retired, *self.workers]

    @property
    def retries(self) -> int:
        """Return how many tasks the workers, the killed ones too, put off for a retry."""
        return sum(worker.retries for worker in self.every_worker)

    @property
    def error_lines(self) -> int:
        """Return how many ERROR lines the workers, the killed ones too, logged."""
        return sum(worker.errors for worker in self.every_worker)

    def stop(self) -> None:
        """Stop every worker still running."""
        for worker in self.workers:
            worker.stop()


# --- the receiver of events ---------------------------------------------------------------


@dataclass
class ReceivedEvents:
    """What the endpoint was sent: each subscription's sequence numbers in the order they arrived."""

    sequences: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    types: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    posts: int = 0
    cut_off: int = 0  # the sender died in the middle of the body (a worker SIGKILLed mid-POST)
    bad_signatures: int = 0
    unreadable: int = 0


class EventReceiver:
    """An endpoint of the cinema's services on 127.0.0.1: verifies, records and answers 200.

    A body whose signature does not verify is answered 400 (as a receiver that checks does)
    and counted; the dispatcher then tries it again.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received = ReceivedEvents()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # nobody is left to answer
                    receiver.cut_off()
                    return
                status = receiver.take(body, self.headers.get("Billing-Signature", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Log no line per event."""

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{HOST}:{self._server.server_address[1]}/billing-events"
        self._thread = threading.Thread(target=self._server.serve_forever, name="event-receiver", daemon=True)
        self._thread.start()

    def _signed(self, body: bytes, header: str) -> bool:
        """Check the Billing-Signature header as docs/events.md tells receivers to."""
        from notifications.services.events import signature_header

        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        if not parts.get("t", "").isdigit():
            return False
        expected = signature_header(secret=self.secret, body=body, timestamp=int(parts["t"]))
        return hmac.compare_digest(expected, header)

    def cut_off(self) -> None:
        """Count a POST whose sender went away before the whole body arrived."""
        with self._lock:
            self.received.posts += 1
            self.received.cut_off += 1

    def take(self, body: bytes, signature: str) -> int:
        """Record one POST; return the status to answer."""
        with self._lock:
            self.received.posts += 1
            if not self._signed(body, signature):
                self.received.bad_signatures += 1
                return 400
            try:
                event = json.loads(body)
                subscription, sequence = str(event["subscription_id"]), int(event["sequence"])
            except (ValueError, KeyError, TypeError):
                self.received.unreadable += 1
                return 400
            self.received.sequences[subscription].append(sequence)
            self.received.types[str(event.get("type"))] += 1
            return 200

    def stop(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
