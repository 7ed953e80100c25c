"""Settings for `make run` and development on a laptop: SQLite and a file broker by default."""

import os
from pathlib import Path

import environ

# `make run` writes the demo's configuration (its address, ports, database and broker) to
# var/demo.env, so that a command run from another terminal (`billing_advance`, `reconcile`)
# builds the same links and talks to the same sandbox. Read before the shared settings, which
# build URLs from it; the real environment wins over the file.
DEMO_ENV_FILE = Path(
    os.environ.get("DEMO_ENV_FILE") or Path(__file__).resolve().parents[2] / "var" / "demo.env"
)
environ.Env.read_env(DEMO_ENV_FILE, overwrite=False)

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import (  # noqa: E402
    LOGGING,
    PAYMENT_PROVIDERS,
    STRIPE_API_BASE,
    STRIPE_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET,
    YOOKASSA_SHOP_ID,
    env,
)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])
# Emails are written to var/emails/ (EMAIL_FILE_PATH), one line each printed by the worker,
# and kept on the notice in admin, unless told otherwise.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="config.mail.DemoFileEmailBackend")
# A service key for trying GET /api/v1/internal/access/{user_id}/; `make run` prints it.
BILLING_SERVICE_KEYS = env.list("BILLING_SERVICE_KEYS", default=["demo-service-key-local-only"])

# Without Stripe keys, `make run` talks to the offline sandbox it starts on this port.
STRIPE_SANDBOX_PORT = env.int("STRIPE_SANDBOX_PORT", default=12111)
if not STRIPE_SECRET_KEY:
    STRIPE_SECRET_KEY = "sk_test_sandbox"  # the sandbox accepts any test key
    STRIPE_API_BASE = STRIPE_API_BASE or f"http://127.0.0.1:{STRIPE_SANDBOX_PORT}"
    STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET or "whsec_sandbox_local_only"

# Without a YooKassa shop, `make run` takes roubles through the offline YooKassa sandbox it
# starts on this port (payments/sandbox/yookassa; its shop and key are the sandbox's own).
YOOKASSA_SANDBOX_PORT = env.int("YOOKASSA_SANDBOX_PORT", default=12112)
if not YOOKASSA_SHOP_ID:
    YOOKASSA_SHOP_ID = "100500"
    YOOKASSA_SECRET_KEY = "test_sandbox_secret_key"
    YOOKASSA_API_BASE = f"http://127.0.0.1:{YOOKASSA_SANDBOX_PORT}/v3"
    PAYMENT_PROVIDERS = {
        **PAYMENT_PROVIDERS,
        "yookassa": "payments.gateways.yookassa.setup.gateway_from_settings",
    }

# The one line per email the demo prints goes to the terminal whatever LOG_LEVEL says.
LOGGING = {
    **LOGGING,
    "formatters": {**LOGGING["formatters"], "bare": {"format": "%(message)s"}},
    "handlers": {
        **LOGGING["handlers"],
        "demo_mail": {"class": "logging.StreamHandler", "formatter": "bare", "stream": "ext://sys.stdout"},
    },
    "loggers": {"config.mail": {"handlers": ["demo_mail"], "level": "INFO", "propagate": False}},
}
