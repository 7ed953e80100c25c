"""Gunicorn settings for the web process of the billing service.

The image runs `gunicorn --config config/gunicorn.conf.py config.wsgi:application`.
Sizing comes from the environment so one image fits every host; command-line flags
and GUNICORN_CMD_ARGS still override anything set here.
"""

import os

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

# Trust X-Forwarded-Proto (the request's scheme) from the same proxies Django does
# (TRUSTED_PROXY_IPS, config/middleware.py), and from nobody when it is empty; gunicorn's own
# default would trust 127.0.0.1.
forwarded_allow_ips = os.environ.get("TRUSTED_PROXY_IPS", "")
