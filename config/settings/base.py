"""Settings shared by every environment.

Every value a deployment may change is read from the environment with django-environ;
the default is what a developer needs locally. README.md lists each variable.
"""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A developer may keep local overrides in .env; deployments use the real environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core ---------------------------------------------------------------------------
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Addresses or CIDR networks of the reverse proxy: only requests from these may set
# X-Forwarded-Proto/-For (config/middleware.py); empty = nobody. gunicorn reads the same variable.
TRUSTED_PROXY_IPS = env.list("TRUSTED_PROXY_IPS", default=[])
# Public base URL of this service, used to build links sent to viewers (checkout return pages).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files, served from our own static files: the docs work without internet.
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "auditlog",
    "import_export",
    # Staff login throttle (admin): see "Staff login throttle" below.
    "axes",
    "core",
    "accounts",
    "tariffs",
    "billing",
    "payments",
    "notifications",
    "ledger",
    # The checks of this service's own settings (config/checks.py).
    "config.apps.ConfigConfig",
]

MIDDLEWARE = [
    # First: forwarding headers count only from TRUSTED_PROXY_IPS, before anything reads them.
    "config.middleware.TrustedProxyMiddleware",
    # An id for each request, on all its log lines, the tasks it queues and its answer.
    "config.middleware.RequestIdMiddleware",
    # Counts and times every request by URL pattern for /metrics (config/metrics.py).
    "config.metrics.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # No NUL character in a URL or header reaches the session, a view or PostgreSQL.
    "config.middleware.NulCharacterMiddleware",
    # A database outage answers 503, in admin and pages as in the API.
    "config.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Puts the signed-in staff member on every audit log entry written during the request.
    "auditlog.middleware.AuditlogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
# A POST refused by the CSRF check answers JSON under /api/ (admin keeps Django's page).
CSRF_FAILURE_VIEW = "core.errors.json_csrf_failure"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
# SQLite is the embedded default for `make run`; production and tests use PostgreSQL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'billing.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: wait for locks instead of failing, and take
    # the write lock at BEGIN so two writers never deadlock on a lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# A read replica (optional). The pages that only read (the accounting dashboard, reports,
# exports) read from it inside core.replica.replica_reads(); everything else, and whatever
# decides money, reads the primary (config/db_router.py). Without it they read the primary.
DATABASE_REPLICA_ALIAS = "replica" if env("DATABASE_REPLICA_URL", default="") else None
if DATABASE_REPLICA_ALIAS:
    DATABASES[DATABASE_REPLICA_ALIAS] = env.db("DATABASE_REPLICA_URL")
    DATABASES[DATABASE_REPLICA_ALIAS]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES[DATABASE_REPLICA_ALIAS]["CONN_HEALTH_CHECKS"] = True
DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------------
# Short-lived marks every process must agree on: "this renewal is already queued", "the
# dispatcher was nudged this second", "this checkout was re-read from the provider a moment
# ago". They only save work (the rows decide), but in a per-process memory cache each web and
# worker process keeps its own marks and redoes what the others have just done. Production
# points CACHE_URL at Redis (config/checks.py warns otherwise); `make run` keeps memory.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- Internationalisation and time --------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Where Django's date formats need a correction (Russian day and month: "6 декабря").
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Django REST framework and the OpenAPI schema -----------------------------------
REST_FRAMEWORK = {
    # Viewers authenticate with the cinema's JWT, internal services with a service key.
    # No session authentication on the API: it would cost a query per request and CSRF.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ViewerJWTAuthentication",
        "accounts.authentication.ServiceKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsViewer"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSONParser, refusing too deep nesting and NUL characters with a 400.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.StandardPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cinema billing API",
    "DESCRIPTION": (
        "Subscriptions, payments and access for the online cinema. Viewers send the "
        "cinema's JWT as `Authorization: Bearer <token>`; internal services send "
        "`X-Service-Key`. Errors always have the shape "
        '`{"error": {"code": "...", "message": "...", "details": {...}}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from our own static files (drf-spectacular-sidecar), not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # The 400 and 503 answers any operation may give, and the 404 of a page past the end.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.add_common_error_responses",
        # /healthz/ and /readyz/ are plain Django views: described here for the orchestrator's authors.
        "config.openapi.add_probe_paths",
    ],
}

# --- Authentication of viewers and internal services --------------------------------
# HS256 with a shared secret, or RS256 with the auth service's public key (PEM).
AUTH_JWT_ALGORITHM = env("AUTH_JWT_ALGORITHM", default="HS256")
AUTH_JWT_SECRET = env("AUTH_JWT_SECRET", default="dev-only-jwt-secret-change-me-0123456789")
AUTH_JWT_PUBLIC_KEY = env("AUTH_JWT_PUBLIC_KEY", default="").replace("\\n", "\n")
AUTH_JWT_ISSUER = env("AUTH_JWT_ISSUER", default="")
AUTH_JWT_AUDIENCE = env("AUTH_JWT_AUDIENCE", default="")
AUTH_JWT_LEEWAY_SECONDS = env.int("AUTH_JWT_LEEWAY_SECONDS", default=30)
BILLING_SERVICE_KEYS = env.list("BILLING_SERVICE_KEYS", default=[])

# --- Staff login throttle (django-axes) ---------------------------------------------
# Only staff sign in with a password (admin); viewers and services never call authenticate(),
# so their JWT and service keys are not counted. The axes backend goes first: it refuses a
# locked-out username and address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# After this many wrong passwords for one username from one address, that pair is refused
# for the cool-off period (and each new try during it starts the period again).
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client's address behind our proxy, and the lockout page in the admin's look.
AXES_CLIENT_IP_CALLABLE = "config.login_throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "config.login_throttle.lockout_response"

# --- Billing rules ------------------------------------------------------------------
# How long a past_due subscription keeps access while its renewal is retried.
BILLING_GRACE_PERIOD = timedelta(days=env.int("BILLING_GRACE_PERIOD_DAYS", default=3))

# The demo's movable billing clock (see core/clock.py); empty = real time only.
BILLING_CLOCK_FILE = env("BILLING_CLOCK_FILE", default=str(BASE_DIR / "var" / "billing-clock.json"))

# Dunning: days after a failed renewal's due date on which it is tried again.
BILLING_RENEWAL_RETRY_DAYS = [
    int(day) for day in env.list("BILLING_RENEWAL_RETRY_DAYS", default=["1", "3", "5"])
]
# How many due subscriptions the renewal job reads per batch.
BILLING_RENEWAL_BATCH_SIZE = env.int("BILLING_RENEWAL_BATCH_SIZE", default=500)
# Refunds above this amount (minor units, any currency) wait for a second staff member's approval.
REFUND_APPROVAL_THRESHOLD = env.int("REFUND_APPROVAL_THRESHOLD", default=500000)
# How many days after a payment a viewer may ask for it back (POST /payments/{id}/refund-request/).
REFUND_REQUEST_WINDOW_DAYS = env.int("REFUND_REQUEST_WINDOW_DAYS", default=14)

# --- Payment providers --------------------------------------------------------------
# Each provider this deployment takes payments through, and the function that builds its
# gateway from the settings below (payments/gateways/__init__.py is the registry).
PAYMENT_PROVIDERS = {"stripe": "payments.gateways.stripe_setup.gateway_from_settings"}
# YooKassa takes part only when its shop is configured (see "YooKassa" below).
if env("YOOKASSA_SHOP_ID", default=""):
    PAYMENT_PROVIDERS["yookassa"] = "payments.gateways.yookassa.setup.gateway_from_settings"
# The provider new tariffs (and subscriptions to them) pay through, unless a tariff names another.
DEFAULT_PAYMENT_PROVIDER = env("DEFAULT_PAYMENT_PROVIDER", default="stripe")

# --- Stripe and checkout ------------------------------------------------------------
# With a secret key and no API base, real Stripe is used; `make run` points the API base at
# the offline sandbox (payments/sandbox), which production settings refuse.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_API_VERSION = env("STRIPE_API_VERSION", default="")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
STRIPE_MAX_RETRIES = env.int("STRIPE_MAX_RETRIES", default=2)
# Outgoing calls to Stripe per second (Stripe allows 25 per endpoint by default; 0 = no limit),
# shared by every process through this Redis (empty: each process limits itself alone).
STRIPE_RATE_LIMIT_PER_SECOND = env.int("STRIPE_RATE_LIMIT_PER_SECOND", default=25)
STRIPE_RATE_LIMIT_REDIS_URL = env("STRIPE_RATE_LIMIT_REDIS_URL", default="")

# --- YooKassa (docs/gateway.md, "YooKassa") ------------------------------------------
# A payment provider only when YOOKASSA_SHOP_ID is set; `make run` points it at the offline
# YooKassa sandbox, which production settings refuse (the gateway checks the API base).
YOOKASSA_SHOP_ID = env("YOOKASSA_SHOP_ID", default="")
YOOKASSA_SECRET_KEY = env("YOOKASSA_SECRET_KEY", default="")
YOOKASSA_API_BASE = env("YOOKASSA_API_BASE", default="https://api.yookassa.ru/v3")
YOOKASSA_TIMEOUT_SECONDS = env.float("YOOKASSA_TIMEOUT_SECONDS", default=10.0)
YOOKASSA_MAX_RETRIES = env.int("YOOKASSA_MAX_RETRIES", default=2)
YOOKASSA_RATE_LIMIT_PER_SECOND = env.float("YOOKASSA_RATE_LIMIT_PER_SECOND", default=10.0)
YOOKASSA_RATE_LIMIT_REDIS_URL = env("YOOKASSA_RATE_LIMIT_REDIS_URL", default="")
# 54-FZ receipts: VAT code 11 is 22%, Russia's standard rate from 1 January 2026 (1: no VAT).
YOOKASSA_RECEIPTS = env.bool("YOOKASSA_RECEIPTS", default=True)
YOOKASSA_VAT_CODE = env.int("YOOKASSA_VAT_CODE", default=11)
YOOKASSA_PAYMENT_SUBJECT = env("YOOKASSA_PAYMENT_SUBJECT", default="service")
YOOKASSA_PAYMENT_MODE = env("YOOKASSA_PAYMENT_MODE", default="full_payment")
# YooKassa signs no notification: POST /api/v1/webhooks/yookassa/ is accepted only from these
# addresses (YooKassa's published ranges, yookassa.ru/developers/using-api/webhooks#ip), as the
# peer or as the address TRUSTED_PROXY_IPS's proxy appended to X-Forwarded-For. Outside
# production settings the loopback address may post them too (the offline sandbox, tests).
YOOKASSA_NOTIFICATION_IPS = env.list(
    "YOOKASSA_NOTIFICATION_IPS",
    default=[
        "185.71.76.0/27",
        "185.71.77.0/27",
        "77.75.153.0/25",
        "77.75.154.128/25",
        "77.75.156.11",
        "77.75.156.35",
        "2a02:5180::/32",
    ],
)
# How long a checkout page stays payable (Stripe accepts 30 minutes to 24 hours).
CHECKOUT_SESSION_TTL = timedelta(minutes=env.int("CHECKOUT_SESSION_TTL_MINUTES", default=60))
# Where Stripe sends the viewer back; default to this service's own result pages.
CHECKOUT_SUCCESS_URL = env("CHECKOUT_SUCCESS_URL", default=f"{PUBLIC_BASE_URL}/checkout/success/")
CHECKOUT_CANCEL_URL = env("CHECKOUT_CANCEL_URL", default=f"{PUBLIC_BASE_URL}/checkout/cancel/")
# Reconciliation: payments pending longer than this are settled by asking Stripe, and the
# first read of Stripe's event list reaches this far back (later reads go on from a cursor).
RECONCILIATION_PENDING_AFTER = timedelta(minutes=env.int("RECONCILIATION_PENDING_AFTER_MINUTES", default=15))
RECONCILIATION_EVENTS_LOOKBACK = timedelta(hours=env.int("RECONCILIATION_EVENTS_LOOKBACK_HOURS", default=72))
# The hourly sweep of Stripe's charges for any our rows missed reads this far back.
UNBOOKED_CHARGES_LOOKBACK = timedelta(hours=env.int("UNBOOKED_CHARGES_LOOKBACK_HOURS", default=26))

# The demo storefront at /storefront/ (a stand-in for the cinema's frontend).
STOREFRONT_ENABLED = env.bool("STOREFRONT_ENABLED", default=True)

# True only under production settings: demo-only tools refuse to run there.
BILLING_PRODUCTION = False

# --- Email and notices to viewers ---------------------------------------------------
# Django's own email settings, under their own names. Without a backend, mail goes to SMTP
# on EMAIL_HOST; `make run` prints it to the console instead (local.py).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "emails"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Cinema <billing@localhost>")
# Days before a period ends that viewers hear their subscription or trial is ending.
NOTICE_EXPIRING_SOON_DAYS = env.int("NOTICE_EXPIRING_SOON_DAYS", default=3)
# Days before a renewal that viewers whose saved card expires before it are warned (once per
# card and renewal), with a link to where they replace the card (the cinema's account page).
NOTICE_CARD_EXPIRY_DAYS = env.int("NOTICE_CARD_EXPIRY_DAYS", default=14)
# The demo account page's card line (templates/storefront/account.js shows it and focuses "Update card").
CARD_UPDATE_URL = env("CARD_UPDATE_URL", default=f"{PUBLIC_BASE_URL}/storefront/#payment-method")
# Tries of one email (with growing waits) before it is marked failed for support to resend.
NOTICE_MAX_ATTEMPTS = env.int("NOTICE_MAX_ATTEMPTS", default=8)

# --- Events to the cinema's services (docs/events.md) -------------------------------
# Endpoints besides those managed in admin: a comma-separated list of URLs that get every
# event, or JSON: [{"url": "...", "event_types": ["access.granted"], "secret": "..."}].
EVENT_SIGNING_SECRET = env("EVENT_SIGNING_SECRET", default="")
_event_endpoints = env("EVENT_ENDPOINTS", default="").strip()
EVENT_ENDPOINTS: list[dict[str, Any]] = (
    json.loads(_event_endpoints)
    if _event_endpoints.startswith("[")
    else [{"url": url.strip()} for url in _event_endpoints.split(",") if url.strip()]
)
if any(not (endpoint.get("secret") or EVENT_SIGNING_SECRET) for endpoint in EVENT_ENDPOINTS):
    raise ImproperlyConfigured("EVENT_ENDPOINTS needs EVENT_SIGNING_SECRET (or a secret per endpoint).")
EVENT_DELIVERY_TIMEOUT_SECONDS = env.float("EVENT_DELIVERY_TIMEOUT_SECONDS", default=10.0)
# Whether endpoints managed in admin may be plain http on private or local addresses (a
# receiver on this laptop); production refuses them (notifications/services/endpoints.py).
EVENT_ENDPOINTS_ALLOW_PRIVATE = env.bool("EVENT_ENDPOINTS_ALLOW_PRIVATE", default=True)

# --- Retention (docs/deployment.md) -------------------------------------------------
# Days the records of finished work are kept before the nightly job deletes them, in batches
# of RETENTION_BATCH_SIZE rows per transaction; 0 keeps them forever. Money (payments, refunds,
# the ledger's entries) and the audit log are never pruned, nor anything still waiting to be
# handled or sent, nor a row something else still refers to (each app's services/retention.py).
RETENTION_WEBHOOK_EVENTS_DAYS = env.int("RETENTION_WEBHOOK_EVENTS_DAYS", default=90)
RETENTION_RECONCILIATION_RUNS_DAYS = env.int("RETENTION_RECONCILIATION_RUNS_DAYS", default=90)
# Events to the cinema's services and their deliveries.
RETENTION_OUTBOX_DAYS = env.int("RETENTION_OUTBOX_DAYS", default=90)
RETENTION_NOTICES_DAYS = env.int("RETENTION_NOTICES_DAYS", default=180)
RETENTION_LEDGER_CHECK_RUNS_DAYS = env.int("RETENTION_LEDGER_CHECK_RUNS_DAYS", default=400)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=5000)

# --- Celery -------------------------------------------------------------------------
# The embedded default keeps messages in files under var/, so `make run` needs no broker.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://localhost/")
_BROKER_DIR = BASE_DIR / "var" / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600}
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only after it ran: a worker killed mid-task gets it redelivered,
# which is safe because every task is idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker keeps its database connection from one task to the next. Unset, Celery's Django
# fixup closes every connection before and after each task, so each renewal opened a new
# PostgreSQL session: three transactions (the session's start, Django's `SET TIME ZONE`, the
# renewal) where one does. Set, the fixup closes them only every this many tasks, and
# config/celery.py closes one earlier by Django's rules for requests: older than
# DATABASE_CONN_MAX_AGE (0 = after every task, as on SQLite and in tests), or broken.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Installed into django-celery-beat's tables by beat, where admins can see and tune them.
CELERY_BEAT_SCHEDULE = {
    "enqueue-due-renewals": {"task": "billing.tasks.enqueue_due_renewals", "schedule": 60.0},
    "expire-ended-subscriptions": {"task": "billing.tasks.expire_ended_subscriptions", "schedule": 300.0},
    "reconcile-pending-payments": {"task": "payments.tasks.reconcile_pending_payments", "schedule": 300.0},
    "reconcile-missed-events": {"task": "payments.tasks.reconcile_events", "schedule": 300.0},
    "reconcile-unbooked-charges": {"task": "payments.tasks.reconcile_unbooked_charges", "schedule": 3600.0},
    # Outbox and notices: delivered from the database, so a run that is late or lost (a
    # broker outage) only delays them. Stale runs are dropped instead of piling up.
    "dispatch-events": {
        "task": "notifications.tasks.dispatch_events",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    "dispatch-notices": {
        "task": "notifications.tasks.dispatch_notices",
        "schedule": 15.0,
        "options": {"expires": 15},
    },
    "record-upcoming-notices": {"task": "notifications.tasks.record_upcoming_notices", "schedule": 600.0},
    # Cards expiring before the next renewal: once a day is enough (each card and renewal once).
    "record-card-expiry-notices": {
        "task": "notifications.tasks.record_card_expiry_notices",
        "schedule": crontab(minute=0, hour=9),
    },
    # The providers' fees and payouts of the last few days (each line posts once), then, after
    # them and the revenue, the ledger's daily self-check, stored for admin (ledger/tasks.py).
    "post-provider-fees": {"task": "ledger.tasks.post_provider_fees", "schedule": crontab(minute=30, hour=0)},
    "check-ledger": {"task": "ledger.tasks.check_ledger", "schedule": crontab(minute=0, hour=2)},
    # Yesterday's revenue, once the UTC day is over everywhere (the job posts nothing twice).
    "recognize-revenue": {"task": "ledger.tasks.recognize_revenue", "schedule": crontab(minute=10, hour=0)},
    # The reports' day totals, merged so a busy day stays one row per account (ledger/services/totals.py).
    "compact-day-totals": {
        "task": "ledger.tasks.compact_day_totals",
        "schedule": 900.0,
        "options": {"expires": 900},
    },
    # Old records of finished work, deleted in batches (see "Retention" above), after the night's jobs.
    "prune-old-records": {
        "task": "notifications.tasks.prune_old_records",
        "schedule": crontab(minute=30, hour=3),
    },
}

# --- Logging ------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# "plain" text lines for a terminal (`make run`, tests) or "json", one object per line for a log
# collector (production's default). Either way each line of a request or task carries its
# request_id (and the subscription, payment and idempotency key where known), and neither
# writes a secret or a card number (config/logging.py).
LOG_FORMAT = env("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logging.LogContextFilter"}},
    "formatters": {
        "plain": {
            "()": "config.logging.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# --- Error tracking (Sentry) --------------------------------------------------------
# Empty = off. With a DSN, errors of web, worker and beat go to Sentry, scrubbed of secrets,
# tokens, emails and card numbers, and every beat job is a cron monitor (config/sentry.py).
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="development")
# The deployed version (a tag or commit), so Sentry tells which release an error came with.
BILLING_RELEASE = env("BILLING_RELEASE", default="")
# Share of requests and tasks traced for performance (0 = errors only).
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from config.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=BILLING_RELEASE or None,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
        beat_schedule=CELERY_BEAT_SCHEDULE,
    )

# --- Metrics (Prometheus, docs/operations.md) ---------------------------------------
# Empty = /metrics answers anyone who reaches it; set, a scrape must send it as a bearer token.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# A Celery worker serves its own metrics on this port (config/metrics_worker.py); 0 = not at all.
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)

# --- Access cache -------------------------------------------------------------------
# Each web process keeps the rows GET /access/ is answered from, and PostgreSQL tells it
# (LISTEN/NOTIFY, billing/migrations/0007) of every committed change to them; see
# billing/access_cache.py for how fresh the answers are. Ignored (always off) on SQLite.
BILLING_ACCESS_CACHE = env.bool("BILLING_ACCESS_CACHE", default=True)

# --- Exports (django-import-export) -------------------------------------------------
# Exports need the model's own "export" permission (payments.export_payment,
# payments.export_refund: Accounting only), not merely "view", which Support also has.
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
