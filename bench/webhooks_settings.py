"""Settings for bench/webhooks: bench.settings on `billing_bench_webhooks`, Stripe's secret, Redis.

The benchmark and the gunicorn it starts both run under this module; the benchmark passes
the run's own task queue through the environment, so its messages mix with nobody's, and
deletes that queue at the end. No worker serves it: the benchmark measures accepting an
event (verify, store, queue), not processing it.
"""

from bench.settings import *  # noqa: F403
from config.settings.base import env

# A database of its own (bench/database.py drops it at the end), so bench/access can run too.
DATABASES = {
    "default": env.db(
        "BENCH_WEBHOOKS_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/billing_bench_webhooks"
    )
}
# As in production: one persistent connection per worker thread, checked at each request.
DATABASES["default"]["CONN_MAX_AGE"] = None
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Signed by the benchmark with this secret; no call ever goes to Stripe (the address is
# a closed local port, so a call that did would fail at once rather than reach anyone).
STRIPE_SECRET_KEY = "sk_test_bench_webhooks"
STRIPE_WEBHOOK_SECRET = "whsec_bench_webhooks"
STRIPE_API_BASE = "http://127.0.0.1:9"
STRIPE_RATE_LIMIT_PER_SECOND = 0

# Redis as in production; a queue of the run's own.
CELERY_BROKER_URL = env("BENCH_WEBHOOKS_BROKER_URL", default="redis://127.0.0.1:6379/9")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = env("BENCH_WEBHOOKS_QUEUE", default="bench-webhooks")
