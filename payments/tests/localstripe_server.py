"""Start localstripe, a third-party Stripe emulator, for the gateway's contract tests.

Imported by the tests this module uses the standard library only: localstripe may live in
another interpreter. Run as a script (by that interpreter) it serves localstripe on a free
loopback port and prints the port on its first line of output.

Which interpreter: the one running the tests when localstripe is installed there (it is in
requirements-dev.txt); otherwise a private virtualenv under var/, created and filled with the
pinned localstripe on first use. Only when that installation fails are the tests skipped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LOCALSTRIPE_VERSION = "1.15.10"
REPO_ROOT = Path(__file__).resolve().parents[2]
FALLBACK_VENV = REPO_ROOT / "var" / "localstripe-venv"
# localstripe accepts any key that starts with "sk_"; this one is not a secret.
TEST_API_KEY = "sk_test_localstripe"


class LocalstripeUnavailable(Exception):
    """localstripe is not installed and could not be installed."""


@dataclass
class LocalstripeServer:
    """A running localstripe process."""

    process: subprocess.Popen[str]
    url: str
    log_path: Path

    def stop(self) -> None:
        """Stop the process (ours, by its handle) and remove its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def log_tail(self, size: int = 4000) -> str:
        """Return the end of the server's log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""


def localstripe_python() -> str:
    """Return an interpreter that can import localstripe, installing it under var/ if needed."""
    if importlib.util.find_spec("localstripe") is not None:
        return sys.executable
    python = FALLBACK_VENV / "bin" / "python"
    if python.exists() and _can_import_localstripe(python):
        return str(python)
    _install_into_fallback_venv()
    return str(python)


def start_localstripe(timeout: float = 30.0) -> LocalstripeServer:
    """Start localstripe on a free loopback port and return once it answers API calls."""
    python = localstripe_python()
    log_fd, log_name = tempfile.mkstemp(prefix="localstripe-", suffix=".log")
    with os.fdopen(log_fd, "w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script, no shell
            [python, str(Path(__file__).resolve())],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    server = LocalstripeServer(process=process, url="", log_path=Path(log_name))
    try:
        port = _read_port(process, deadline=time.monotonic() + timeout)
        server.url = f"http://127.0.0.1:{port}"
        _wait_until_answering(server, deadline=time.monotonic() + timeout)
    except BaseException as exc:
        tail = server.log_tail()
        server.stop()
        if not isinstance(exc, Exception):
            raise
        raise RuntimeError(f"localstripe did not start ({exc}); its log ends with:\n{tail}") from exc
    return server


def _can_import_localstripe(python: Path) -> bool:
    result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [str(python), "-c", "import localstripe, aiohttp"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode == 0


def _install_into_fallback_venv() -> None:
    python = FALLBACK_VENV / "bin" / "python"
    steps = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(FALLBACK_VENV)])
    steps.append(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"localstripe=={LOCALSTRIPE_VERSION}",
        ]
    )
    for command in steps:
        try:
            subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)  # noqa: S603
        except subprocess.CalledProcessError as exc:
            raise LocalstripeUnavailable(
                f"`{' '.join(command)}` failed: {(exc.stderr or exc.stdout or '')[-2000:]}"
            ) from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LocalstripeUnavailable(f"`{' '.join(command)}` failed: {exc}") from exc


def _read_port(process: subprocess.Popen[str], deadline: float) -> int:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"localstripe exited with status {process.returncode}")
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line.strip().isdigit():
                return int(line)
            if not line:
                raise RuntimeError("localstripe closed its output before naming its port")
    raise TimeoutError("localstripe did not name its port in time")


def _wait_until_answering(server: LocalstripeServer, deadline: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        f"{server.url}/v1/customers?limit=1",
        headers={"Authorization": f"Bearer {TEST_API_KEY}"},
    )
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"localstripe exited with status {server.process.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError("localstripe did not answer in time")


def _serve() -> None:
    """Serve localstripe on 127.0.0.1 with a fresh, in-memory store (runs in the child)."""
    from aiohttp import web
    from localstripe.resources import store
    from localstripe.server import app

    # localstripe pickles its whole store to /tmp/localstripe.pickle after every write: slow,
    # and shared with any other localstripe on the machine. Tests want a private, fresh store.
    store.dump_to_disk = lambda: None
    # Its own `localstripe` command listens on every interface; tests need loopback only,
    # and binding port 0 here lets the kernel pick a free port without a race.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)  # noqa: T201 - the parent reads the port from here
    web.run_app(app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    _serve()
