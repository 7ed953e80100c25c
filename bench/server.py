"""Run the service under gunicorn on 127.0.0.1 for the length of a benchmark."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class GunicornConfig:
    worker_class: str
    workers: int
    threads: int = 1

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.worker_class}, {self.workers} workers{threads}"


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int


def free_port() -> int:
    """Return a TCP port nobody listens on right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url} within {START_TIMEOUT_SECONDS}s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # SIGTERM lets the master stop its workers; the whole group is killed if that hangs.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


@contextmanager
def _started(
    command: list[str], environment: Mapping[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` under the current settings module and `environment`; stop it on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE, **environment},
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C reaches us, and we stop it in order.
            start_new_session=True,
        )
    try:
        yield process
    finally:
        _stop(process)


@contextmanager
def gunicorn_running(
    *, config: GunicornConfig, log_path: Path, environment: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Start gunicorn with the current settings module, wait for /healthz/, stop it on exit.

    `environment` adds variables to the server's. As in production (config/gunicorn.conf.py),
    the workers count their metrics in files of a directory in memory of this server's own.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        f"--bind={HOST}:{port}",
        f"--worker-class={config.worker_class}",
        f"--workers={config.workers}",
        f"--threads={config.threads}",
        "--timeout=30",
        "--graceful-timeout=5",
        "--log-level=warning",
        "--worker-tmp-dir=/dev/shm",
    ]
    metrics_directory = tempfile.mkdtemp(prefix="bench-metrics-", dir="/dev/shm")
    try:
        with _started(
            command, {"PROMETHEUS_MULTIPROC_DIR": metrics_directory, **(environment or {})}, log_path
        ) as process:
            base_url = f"http://{HOST}:{port}"
            _wait_until_healthy(f"{base_url}/healthz/", process, log_path)
            yield Server(base_url=base_url, pid=process.pid)
    finally:
        shutil.rmtree(metrics_directory, ignore_errors=True)
