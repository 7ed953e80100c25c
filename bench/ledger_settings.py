"""Settings for bench/ledger: production-like, on the `billing_bench_ledger` database it builds.

Renewals charge the in-process memory provider, so what is measured is this service's own
work (SQL and Python), not a provider's latency; the billing clock is a file of the run's own,
moved on so that the renewals fall due.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
# bench/database.py refuses to create or drop any database but the benchmarks' own.
DATABASES = {
    "default": env.db(
        "BENCH_LEDGER_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/billing_bench_ledger"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = None
PAYMENT_GATEWAY = "memory"
# What a renewal's commit hands to Celery (the notices' dispatcher) stays in this process.
CELERY_BROKER_URL = "memory://localhost/"
BILLING_CLOCK_FILE = env("BILLING_CLOCK_FILE", default="")
BILLING_ACCESS_CACHE = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
