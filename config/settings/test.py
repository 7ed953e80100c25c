"""Settings for the test suite: PostgreSQL and Redis on localhost unless told otherwise."""

import os

# A developer's SENTRY_DSN must not report the suite's deliberate errors: the Sentry tests start
# the SDK themselves, with a transport that keeps events in memory.
os.environ["SENTRY_DSN"] = ""

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, env

# Each run of the suite has names of its own, so that two runs on one machine (`make test`
# twice, or two checkouts) never share a test database or a queue: pytest-django creates
# `test_billing_run<id>`, and every Redis key of the broker starts with the run's prefix. The
# processes a run starts (Celery workers, servers) inherit the id through the environment.
TEST_RUN_ID = os.environ.setdefault("BILLING_TEST_RUN_ID", str(os.getpid()))
DATABASES["default"] = env.db(
    "DATABASE_URL", default=f"postgres://postgres@127.0.0.1:5432/billing_run{TEST_RUN_ID}"
)
DATABASES["default"]["CONN_MAX_AGE"] = 0
# The read replica's stand-in: a second connection to the test database (config/tests/
# test_db_router.py). Reads go to it only in the tests that name it the replica, which commit
# their rows (transaction=True): another connection never sees a test's open transaction.
DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
DATABASE_REPLICA_ALIAS = None
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "global_keyprefix": f"test-run{TEST_RUN_ID}:"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
EVENT_ENDPOINTS = []
EVENT_DELIVERY_TIMEOUT_SECONDS = 2.0
AUTH_JWT_ALGORITHM = "HS256"
AUTH_JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"
BILLING_SERVICE_KEYS = ["test-service-key"]
BILLING_ACCESS_CACHE = False  # on only in the tests that test it: it holds a connection of its own
# The staff login throttle refuses Client.login() (it has no request to count by); it is on
# only in its own tests (config/tests/test_login_throttle.py). force_login is never counted.
AXES_ENABLED = False
# Tests point STRIPE_API_BASE at a sandbox or emulator they start themselves.
STRIPE_SECRET_KEY = "sk_test_billing_tests"
# Worker processes started by tests are pointed at the test's sandbox through the environment.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_WEBHOOK_SECRET = "whsec_billing_tests"
STRIPE_MAX_RETRIES = 0
# The outgoing rate limit is shared through the run's own Redis database, with the worker
# processes it starts, and never with another test run that uses another database.
STRIPE_RATE_LIMIT_REDIS_URL = env("STRIPE_RATE_LIMIT_REDIS_URL", default=CELERY_BROKER_URL)
# YooKassa's shop is the sandbox's own; it is a provider (PAYMENT_PROVIDERS) only in the tests
# that add it (payments/tests/yookassa_wiring.py), so every other test runs as before.
YOOKASSA_SHOP_ID = "100500"
YOOKASSA_SECRET_KEY = "test_sandbox_secret_key"
YOOKASSA_API_BASE = env("YOOKASSA_API_BASE", default="http://127.0.0.1:9/v3")
YOOKASSA_MAX_RETRIES = 0
YOOKASSA_RATE_LIMIT_REDIS_URL = env("YOOKASSA_RATE_LIMIT_REDIS_URL", default=CELERY_BROKER_URL)
PUBLIC_BASE_URL = "http://testserver"
CHECKOUT_SUCCESS_URL = "http://testserver/checkout/success/"
CHECKOUT_CANCEL_URL = "http://testserver/checkout/cancel/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests never serve collected static files.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]
# Each test run moves its own billing clock (a fixture resets it).
BILLING_CLOCK_FILE = env(
    "BILLING_CLOCK_FILE", default=str(BASE_DIR / "var" / f"test-billing-clock-{os.getpid()}.json")
)
