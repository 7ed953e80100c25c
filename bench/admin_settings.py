"""Settings for bench/admin: production-like, on the `billing_bench_admin` database it builds."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# bench/admin_dataset.py refuses to create or drop any database but this one.
DATABASES = {
    "default": env.db(
        "BENCH_ADMIN_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/billing_bench_admin"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = None
# As in production: the billing clock is the real time, not a demo offset read from a file.
BILLING_CLOCK_FILE = ""
# The pages are requested in-process: no need to check for changes to what access reads.
BILLING_ACCESS_CACHE = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
