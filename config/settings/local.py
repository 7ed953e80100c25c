"""Settings for `make run` and development on a laptop: SQLite and a file broker by default."""

from config.settings.base import *  # noqa: F403
from config.settings.base import STRIPE_API_BASE, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])
# Emails are printed by the worker (and kept on the notice in admin) unless told otherwise.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

# Without Stripe keys, `make run` talks to the offline sandbox it starts on this port.
STRIPE_SANDBOX_PORT = env.int("STRIPE_SANDBOX_PORT", default=12111)
if not STRIPE_SECRET_KEY:
    STRIPE_SECRET_KEY = "sk_test_sandbox"  # the sandbox accepts any test key
    STRIPE_API_BASE = STRIPE_API_BASE or f"http://127.0.0.1:{STRIPE_SANDBOX_PORT}"
    STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET or "whsec_sandbox_local_only"
