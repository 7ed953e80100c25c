"""Running the sandbox: as a process, never with production settings, keeping state in SQLite."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from payments.sandbox import SandboxRefused, start_sandbox
from payments.tests.sandbox_helpers import http, make_client, wait_until

REPO = Path(__file__).resolve().parents[2]


def test_process_refuses_production_settings():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production"}

    done = subprocess.run(
        [sys.executable, "-m", "payments.sandbox", "--port", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )

    assert done.returncode != 0
    assert "refuses to start with production settings" in done.stderr


def test_in_process_start_refuses_production_settings(monkeypatch):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.production")

    with pytest.raises(SandboxRefused):
        start_sandbox()


def test_process_serves_the_api_and_stops_on_sigterm(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "payments.sandbox",
            "--port",
            str(port),
            "--state",
            str(tmp_path / "s.sqlite3"),
            "--webhook-url",
            "http://127.0.0.1:9/none",
            "--webhook-secret",
            "whsec_process",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy():
            try:
                return http("GET", base + "/_sandbox/health")[0] == 200
            except OSError:
                return False

        wait_until(healthy, timeout=10, interval=0.05)
        config = json.loads(http("GET", base + "/_sandbox/config")[2])
    finally:
        process.terminate()
        returncode = process.wait(timeout=10)

    assert returncode == 0, process.stderr.read() if process.stderr else ""
    assert config["webhook_url"] == "http://127.0.0.1:9/none"
    assert config["webhook_secret"] == "whsec_process"
    assert config["public_url"] == f"http://127.0.0.1:{port}"


def test_state_file_keeps_objects_and_idempotency_keys_across_restarts(tmp_path):
    state = tmp_path / "sandbox.sqlite3"
    with start_sandbox(state_path=state) as first:
        created = make_client(first).v1.customers.create(
            params={"email": "viewer@cinema.test"}, options={"idempotency_key": "customer-42"}
        )

    with start_sandbox(state_path=state) as second:
        client = make_client(second)
        fetched = client.v1.customers.retrieve(created.id)
        replayed = client.v1.customers.create(
            params={"email": "viewer@cinema.test"}, options={"idempotency_key": "customer-42"}
        )

    assert fetched.email == "viewer@cinema.test"
    assert replayed.id == created.id
