"""Gunicorn settings for the web process of the billing service.

The image runs `gunicorn --config config/gunicorn.conf.py config.wsgi:application`.
Sizing comes from the environment so one image fits every host; command-line flags
and GUNICORN_CMD_ARGS still override anything set here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import multiprocess

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

# The container's network namespace is the boundary; the health probes and the compose
# port mapping both expect port 8000.
bind = "0.0.0.0:8000"

# Threads let a worker overlap the waits on PostgreSQL and Stripe without more memory.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))

# The heartbeat file lives in memory: on an overlay filesystem its fchmod can stall workers.
worker_tmp_dir = "/dev/shm"  # noqa: S108

# The orchestrator restarts and scales containers; no one drives gunicornc inside one,
# and the app user has no writable home for the socket.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
# gunicorn's own line, with the request id the application answered with (RequestIdMiddleware),
# so an access line can be matched to the application's JSON lines; %(L)s is seconds taken.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)s request_id=%({x-request-id}o)s'

# Trust X-Forwarded-Proto (the request's scheme) from the same proxies Django does
# (TRUSTED_PROXY_IPS, config/middleware.py), and from nobody when it is empty; gunicorn's own
# default would trust 127.0.0.1.
forwarded_allow_ips = os.environ.get("TRUSTED_PROXY_IPS", "")

# Metrics (config/metrics.py): each worker counts in its own files in PROMETHEUS_MULTIPROC_DIR and
# /metrics adds them up, so a scrape answered by any worker sees the whole server. Without the
# variable, this server uses a directory of its own in memory (named after the master's pid, so
# a reload of this file names the same one), removed when it stops. Either way the directory is
# emptied at start: a restarted server must not add its predecessor's counts to its own. One
# directory per gunicorn, never shared with another server.
OWN_METRICS_DIR = f"{worker_tmp_dir}/billing-metrics-{os.getpid()}"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = OWN_METRICS_DIR


def on_starting(server: Arbiter) -> None:
    """Empty the metrics directory (making it if need be) before any worker starts."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Arbiter, worker: Worker) -> None:
    """Drop a dead worker's live gauges; its counters stay in the totals, as counters must."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Arbiter) -> None:
    """Remove the metrics directory, if it is the one this server named for itself."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") == OWN_METRICS_DIR:
        shutil.rmtree(OWN_METRICS_DIR, ignore_errors=True)
