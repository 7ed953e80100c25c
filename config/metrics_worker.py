"""A Celery worker's own /metrics: renewals, provider calls and webhook handling are counted there.

The work the counters are about happens mostly in workers, which serve no HTTP. With
`METRICS_WORKER_PORT` set, the worker's main process serves what its processes counted on that
port (behind `METRICS_TOKEN`, like the web's /metrics). A prefork worker's tasks run in child
processes, so it needs `PROMETHEUS_MULTIPROC_DIR` too (a directory of its own, never the web's):
the main process empties it before the children start, and each child marks itself dead
when it exits. The backlog gauges are not served here: the web's /metrics reads them.

The receivers are connected by the config app (config/apps.py) in every process, and act
only in a worker.
"""

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from celery import signals
from django.conf import settings
from prometheus_client import make_wsgi_app, multiprocess
from prometheus_client.exposition import ThreadingWSGIServer

from config.metrics import (
    MULTIPROCESS_DIR_VARIABLE,
    UNAUTHORIZED_HEADERS,
    bearer_token_matches,
    process_registry,
    refusal_body,
)

logger = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def empty_multiprocess_dir() -> None:
    """Delete the figures a previous run left in `PROMETHEUS_MULTIPROC_DIR` (creating it if missing).

    Left there, a restarted server would add its predecessors' counts to its own.
    """
    directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def guarded(app: WsgiApp, token: str) -> WsgiApp:
    """Return `app` answering only requests that carry `token` as a bearer token (any, if empty)."""

    def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if not token or bearer_token_matches(authorization, token):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized", [("Content-Type", "application/json"), *UNAUTHORIZED_HEADERS.items()]
        )
        return [json.dumps(refusal_body(authorization)).encode()]

    return answer


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Log no line per scrape."""


def serve_metrics(port: int, address: str = "0.0.0.0") -> ThreadingWSGIServer:  # noqa: S104
    """Serve this server's counters on `port` from a daemon thread; return the server."""
    app = guarded(make_wsgi_app(process_registry()), settings.METRICS_TOKEN)
    server = make_server(address, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


@signals.worker_init.connect
def start_worker_metrics(**kwargs: Any) -> None:
    """In a worker's main process, before its pool starts: serve the metrics, if a port is set."""
    port = settings.METRICS_WORKER_PORT
    if not port:
        return
    empty_multiprocess_dir()
    try:
        serve_metrics(port)
    except OSError:
        # Renewals matter more than their figures: the worker runs on without its endpoint.
        logger.exception("cannot serve the worker's metrics on port %d; running without them", port)
        return
    logger.info("serving the worker's metrics on port %d", port)


@signals.worker_process_shutdown.connect
def mark_worker_process_dead(pid: int | None = None, **kwargs: Any) -> None:
    """When a prefork child exits, drop its live gauges (its counters stay in the totals)."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        multiprocess.mark_process_dead(pid or os.getpid())
