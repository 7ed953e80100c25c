"""Settings for production: everything secret must come from the environment."""

import os

# Production's defaults for variables the shared settings act on as soon as they read them (the
# log format, and Sentry's environment when SENTRY_DSN starts it): set before they are read,
# and the real environment still wins. JSON lines for the log collector.
os.environ.setdefault("LOG_FORMAT", "json")
os.environ.setdefault("SENTRY_ENVIRONMENT", "production")

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
AUTH_JWT_SECRET = env("AUTH_JWT_SECRET", default="")
DATABASES["default"] = env.db("DATABASE_URL")  # the read replica, if any, stays (base.py)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

# Believed only from TRUSTED_PROXY_IPS: config.middleware.TrustedProxyMiddleware removes the
# header from any other client, so `request.is_secure()` cannot be faked.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=3600)
# HTTPS only, subdomains included; `preload` only signals consent, submitting the domain to
# the preload list stays a deliberate act of the domain's owner.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Health probes come over plain HTTP from the orchestrator, and Prometheus scrapes from inside.
SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^readyz/$", r"^metrics$"]
# Marks settings under which demo-only tools (demo data, the billing clock, the Stripe
# sandbox) refuse to run.
BILLING_PRODUCTION = True
BILLING_CLOCK_FILE = ""
STOREFRONT_ENABLED = False
# Endpoints typed in admin get only https on public addresses: staff cannot aim the
# dispatcher at the service's internal neighbours.
EVENT_ENDPOINTS_ALLOW_PRIVATE = env.bool("EVENT_ENDPOINTS_ALLOW_PRIVATE", default=False)
