"""Settings for the benchmarks: production-like, on the throwaway `billing_bench` database.

The benchmark creates that database, fills it and drops it again; nothing else uses it.
"""

from bench import BENCH_DATABASE_NAME
from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "bench.urls"

DATABASES = {
    "default": env.db(
        "BENCH_DATABASE_URL", default=f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE_NAME}"
    )
}
# As in production: one persistent connection per worker, checked at each request.
DATABASES["default"]["CONN_MAX_AGE"] = None
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Fixed here so that a developer's .env cannot change what is measured.
AUTH_JWT_ALGORITHM = "HS256"
AUTH_JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789"
AUTH_JWT_ISSUER = ""
AUTH_JWT_AUDIENCE = ""

# As in production: the billing clock is the real time, not a demo offset read from a file.
BILLING_CLOCK_FILE = ""
# As in production: repeated polls of GET /access/ come from each worker's access cache, which
# PostgreSQL's notifications keep right (billing/access_cache.py).
BILLING_ACCESS_CACHE = True

# Under load, only problems are worth a line.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
