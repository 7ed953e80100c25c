"""Real Celery worker processes for tests, pointed at the test database, broker and sandbox."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A `celery worker` subprocess; its output is kept for assertions and failure reports."""

    def __init__(self, name: str, stripe_api_base: str):
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "STRIPE_API_BASE": stripe_api_base,
            "BILLING_CLOCK_FILE": settings.BILLING_CLOCK_FILE,
        }
        self.name = name
        self.output: list[str] = []
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_until(self, text: str, timeout: float = 30) -> None:
        """Wait until the worker has printed `text`."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.output):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(
                    f"worker {self.name} never printed {text!r}:\n{''.join(self.output[-40:])}"
                )
            time.sleep(0.05)

    def pool_child_pids(self) -> list[int]:
        """Return the ids of the pool processes that run the tasks."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def kill_task_process(self) -> None:
        """Kill the process running the current task with SIGKILL, as the OOM killer would."""
        for pid in self.pool_child_pids():
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
