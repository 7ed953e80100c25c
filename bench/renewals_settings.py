"""Settings for bench/renewals: production-like, on the throwaway `billing_bench_renewals` database.

The benchmark and the Celery workers it starts both run under this module; the benchmark
passes the sandbox's address, the billing clock's file, the task queue and the rate through
the environment. It creates the database, fills it and drops it again; nothing else uses it.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
# bench/renewals_dataset.py refuses to create or drop any database but this one.
DATABASES = {
    "default": env.db(
        "BENCH_RENEWALS_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/billing_bench_renewals"
    )
}
# As in production: a worker keeps its connection from one task to the next (CELERY_DB_REUSE_MAX,
# config/celery.py) and opens a new one once it is older than this.
DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Redis as in production; a queue of the run's own, so nothing else's tasks mix in.
CELERY_BROKER_URL = env("BENCH_RENEWALS_BROKER_URL", default="redis://127.0.0.1:6379/9")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = env("BENCH_RENEWALS_QUEUE", default="bench-renewals")
# Each renewal's commit also nudges the notice and event dispatcher tasks. They go to
# a queue of their own that the benchmark's workers do not serve: it measures renewals, and
# delivering email and events is other workers' job (the benchmark reports how many queued).
NOTIFICATIONS_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-notifications"
CELERY_TASK_ROUTES = {"notifications.tasks.*": {"queue": NOTIFICATIONS_QUEUE}}

# The offline sandbox the benchmark starts; a key of its own, so its rate-limit bucket is
# shared by the benchmark's processes only.
STRIPE_SECRET_KEY = "sk_test_bench_renewals"
STRIPE_WEBHOOK_SECRET = "whsec_bench_renewals"
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_RATE_LIMIT_REDIS_URL = env("STRIPE_RATE_LIMIT_REDIS_URL", default=CELERY_BROKER_URL)

# The benchmark moves the billing clock one period on between its runs.
BILLING_CLOCK_FILE = env("BILLING_CLOCK_FILE", default="")

# Under load, only problems are worth a line (the workers log at INFO on their own).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
