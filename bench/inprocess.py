"""In-process measurements of one request, made through Django's WSGI handler as gunicorn calls it."""

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock
from wsgiref.util import setup_testing_defaults

from django.core.handlers.wsgi import WSGIHandler
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

ACCESS_PATH = "/api/v1/access/"


@dataclass(frozen=True)
class RequestCount:
    case: str
    queries: int  # statements Django sent
    health_checks: int  # Django's `SELECT 1` connection checks (CONN_HEALTH_CHECKS), not in `queries`
    status_code: int
    body: dict[str, Any]
    steady: bool  # the viewer's second request, not their first


def _get(application: WSGIHandler, *, path: str, token: str) -> tuple[int, dict[str, Any]]:
    return _send(
        application,
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "wsgi.input": io.BytesIO(b""),
        },
    )


def post(
    application: WSGIHandler, *, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """POST `body` with `headers` (`Stripe-Signature`...) through the WSGI handler; return status and JSON."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in headers.items():
        environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
    return _send(application, environ)


def _send(application: WSGIHandler, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    environ["HTTP_HOST"] = "127.0.0.1"
    setup_testing_defaults(environ)
    started: list[str] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Callable[[bytes], object]:
        started.append(status)
        return lambda data: None

    response = application(environ, start_response)
    try:
        body = b"".join(response)
    finally:
        response.close()  # sends request_finished, as a WSGI server does
    return int(started[0].split()[0]), json.loads(body)


def request_count(*, application: WSGIHandler, case: str, token: str, steady: bool = True) -> RequestCount:
    """Send one access request for `token` and count what it asked of the database.

    The request goes through Django's WSGI handler, signals included, so persistent
    connections and their health checks behave as under gunicorn. When `steady`, a first
    request is sent and not counted: the steady state is what a polling frontend sees.
    """
    if steady:
        _get(application, path=ACCESS_PATH, token=token)
    database = connections[DEFAULT_DB_ALIAS]
    with (
        CaptureQueriesContext(database) as captured,
        mock.patch.object(database, "is_usable", wraps=database.is_usable) as health_check,
    ):
        status_code, body = _get(application, path=ACCESS_PATH, token=token)
    return RequestCount(
        case=case,
        queries=len(captured.captured_queries),
        health_checks=health_check.call_count,
        status_code=status_code,
        body=body,
        steady=steady,
    )


@dataclass(frozen=True)
class CpuCost:
    python_us: float  # this process, per request
    postgres_us: float | None  # the PostgreSQL server process serving it, when it runs here


def cpu_ns(pid: int) -> int | None:
    """Return the CPU time a local process has used, from the scheduler's nanosecond count."""
    try:
        with open(f"/proc/{pid}/schedstat") as stats:
            return int(stats.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_per_request(
    *, application: WSGIHandler, path: str, tokens: list[str], requests: int = 2000
) -> CpuCost:
    """Return the CPU one request costs this process and its PostgreSQL server process.

    CPU time, unlike wall time, hardly moves when other work shares the machine, so this
    says where the cost is even when the load test's figures are noisy.
    """
    for number in range(200):  # warm up, and open the persistent connection
        _get(application, path=path, token=tokens[number % len(tokens)])
    return cpu_per_call(
        lambda number: _get(application, path=path, token=tokens[number % len(tokens)]), calls=requests
    )


def cpu_per_call(send: Callable[[int], object], *, calls: int) -> CpuCost:
    """Return the CPU one `send(number)` costs this process and its PostgreSQL server process.

    The default database connection must be open already (a warm-up opens it).
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    postgres_before, python_before = cpu_ns(backend_pid), time.process_time_ns()
    for number in range(calls):
        send(number)
    python_ns, postgres_after = time.process_time_ns() - python_before, cpu_ns(backend_pid)
    postgres_us = None
    if postgres_before is not None and postgres_after is not None:
        postgres_us = (postgres_after - postgres_before) / calls / 1000
    return CpuCost(python_us=python_ns / calls / 1000, postgres_us=postgres_us)
