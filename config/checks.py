"""System checks of the service's own settings: a misconfigured deployment must not start.

They are deployment checks tagged `billing`: `manage.py check --deploy` lists them, and
under production settings the web server and Celery refuse to start while any of them is
an error (`refuse_to_start_if_misconfigured`, called by config/wsgi.py, asgi.py, celery.py).
Locally the dev-only defaults apply and nothing here runs.
"""

from collections.abc import Callable
from typing import Any

import jwt
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, register, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from config.middleware import proxy_network

TAG = "billing"
MIN_SECRET_LENGTH = 32
SUPPORTED_JWT_ALGORITHMS = ("HS256", "RS256")
PROXY_MIDDLEWARE = "config.middleware.TrustedProxyMiddleware"
SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
Check = Callable[..., list[CheckMessage]]


def configuration_check(check: Check) -> Check:
    """Register `check` as a deployment check of this service's settings."""
    return register(check, TAG, deploy=True)


def _is_weak(secret: object) -> bool:
    return not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET_LENGTH


@configuration_check
def check_django_secret_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse an empty or short Django secret key: it signs sessions and admin logins."""
    try:
        secret_key = settings.SECRET_KEY
    except ImproperlyConfigured:  # what Django raises on reading an empty SECRET_KEY
        secret_key = ""
    if not _is_weak(secret_key):
        return []
    return [
        checks.Error(
            f"DJANGO_SECRET_KEY is empty or shorter than {MIN_SECRET_LENGTH} characters.",
            hint="Set DJANGO_SECRET_KEY to a long random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(50))'`.",
            id="billing.E001",
        )
    ]


@configuration_check
def check_jwt_verification(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse settings with which no viewer's token could be verified."""
    algorithm = settings.AUTH_JWT_ALGORITHM
    if algorithm not in SUPPORTED_JWT_ALGORITHMS:
        return [
            checks.Error(
                f"AUTH_JWT_ALGORITHM {algorithm!r} is not supported.",
                hint="Set AUTH_JWT_ALGORITHM to HS256 (with AUTH_JWT_SECRET) or RS256 (with AUTH_JWT_PUBLIC_KEY).",
                id="billing.E002",
            )
        ]
    if algorithm == "HS256":
        return _check_jwt_secret(settings.AUTH_JWT_SECRET)
    return _check_jwt_public_key(settings.AUTH_JWT_PUBLIC_KEY)


def _check_jwt_secret(secret: str) -> list[CheckMessage]:
    if not _is_weak(secret):
        return []
    return [
        checks.Error(
            f"AUTH_JWT_SECRET is empty or shorter than {MIN_SECRET_LENGTH} characters (AUTH_JWT_ALGORITHM=HS256).",
            hint="Set AUTH_JWT_SECRET to the secret the cinema's auth service signs tokens with.",
            id="billing.E003",
        )
    ]


def _check_jwt_public_key(pem: str) -> list[CheckMessage]:
    try:
        # The very parser the tokens are verified with.
        jwt.get_algorithm_by_name("RS256").prepare_key(pem)
    except (jwt.InvalidKeyError, ValueError, TypeError):
        return [
            checks.Error(
                "AUTH_JWT_PUBLIC_KEY is empty or not a readable PEM public key (AUTH_JWT_ALGORITHM=RS256).",
                hint="Set AUTH_JWT_PUBLIC_KEY to the auth service's RSA public key in PEM; `\\n` escapes are allowed.",
                id="billing.E004",
            )
        ]
    return []


@configuration_check
def check_payment_providers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse a provider registry the gateways could not be built from."""
    providers = getattr(settings, "PAYMENT_PROVIDERS", None) or {}
    errors: list[CheckMessage] = []
    for name, builder in providers.items():
        try:
            import_string(builder)
        except ImportError as exc:
            errors.append(
                checks.Error(
                    f"PAYMENT_PROVIDERS[{name!r}] = {builder!r} cannot be imported: {exc}",
                    hint="Name the dotted path of a function that builds the provider's gateway.",
                    id="billing.E011",
                )
            )
    if settings.DEFAULT_PAYMENT_PROVIDER not in providers:
        errors.append(
            checks.Error(
                f"DEFAULT_PAYMENT_PROVIDER={settings.DEFAULT_PAYMENT_PROVIDER!r} is not in PAYMENT_PROVIDERS "
                f"({', '.join(sorted(providers)) or 'none'}): no subscription could be paid.",
                hint="Set DEFAULT_PAYMENT_PROVIDER to one of the configured providers.",
                id="billing.E011",
            )
        )
    return errors


@configuration_check
def check_stripe_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse to run without Stripe's API key or the webhook signing secret, when Stripe is used."""
    errors: list[CheckMessage] = []
    if "stripe" not in (getattr(settings, "PAYMENT_PROVIDERS", None) or {}):
        return errors
    if not settings.STRIPE_SECRET_KEY.strip():
        errors.append(
            checks.Error(
                "STRIPE_SECRET_KEY is empty: no checkout, renewal or refund can reach Stripe.",
                hint="Set STRIPE_SECRET_KEY to the account's secret key (sk_live_… or sk_test_…).",
                id="billing.E005",
            )
        )
    if not settings.STRIPE_WEBHOOK_SECRET.strip():
        errors.append(
            checks.Error(
                "STRIPE_WEBHOOK_SECRET is empty: no Stripe webhook can be verified.",
                hint="Set STRIPE_WEBHOOK_SECRET to the signing secret (whsec_…) of the endpoint /api/v1/webhooks/stripe/.",
                id="billing.E006",
            )
        )
    return errors


@configuration_check
def check_yookassa(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse YooKassa without its secret key, or with notification addresses that name no network."""
    if "yookassa" not in (getattr(settings, "PAYMENT_PROVIDERS", None) or {}):
        return []
    errors: list[CheckMessage] = []
    if not str(getattr(settings, "YOOKASSA_SECRET_KEY", "")).strip():
        errors.append(
            checks.Error(
                "YOOKASSA_SECRET_KEY is empty: no payment or refund can reach YooKassa.",
                hint="Set YOOKASSA_SECRET_KEY to the shop's secret key (live_… or test_…).",
                id="billing.E012",
            )
        )
    unreadable = [
        entry for entry in getattr(settings, "YOOKASSA_NOTIFICATION_IPS", []) if proxy_network(entry) is None
    ]
    if unreadable:
        errors.append(
            checks.Error(
                f"YOOKASSA_NOTIFICATION_IPS has entries that are no address or network: {', '.join(unreadable)}.",
                hint="List YooKassa's published addresses and CIDR ranges, comma-separated.",
                id="billing.E013",
            )
        )
    return errors


@configuration_check
def check_service_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse empty or short keys of internal services; warn when there are none."""
    keys = settings.BILLING_SERVICE_KEYS
    if not keys:
        return [
            checks.Warning(
                "BILLING_SERVICE_KEYS is empty: no internal service can ask for a user's access.",
                hint="Set BILLING_SERVICE_KEYS to the comma-separated keys the cinema's services send as X-Service-Key.",
                id="billing.W001",
            )
        ]
    if any(_is_weak(key) for key in keys):
        return [
            checks.Error(
                f"BILLING_SERVICE_KEYS holds an empty key or one shorter than {MIN_SECRET_LENGTH} characters.",
                hint="Give each internal service a long random key, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`.",
                id="billing.E007",
            )
        ]
    return []


@configuration_check
def check_event_signing(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse event endpoints whose deliveries could not be signed."""
    unsigned = [
        str(endpoint.get("url", ""))
        for endpoint in settings.EVENT_ENDPOINTS
        if not (endpoint.get("secret") or settings.EVENT_SIGNING_SECRET)
    ]
    if not unsigned:
        return []
    return [
        checks.Error(
            f"EVENT_ENDPOINTS lists endpoints with no signing secret: {', '.join(unsigned)}.",
            hint="Set EVENT_SIGNING_SECRET, or give each endpoint its own `secret` in the JSON form of EVENT_ENDPOINTS.",
            id="billing.E008",
        )
    ]


@configuration_check
def check_trusted_proxies(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Check that forwarding headers are believed only from the configured proxy."""
    messages: list[CheckMessage] = []
    networks = []
    for entry in settings.TRUSTED_PROXY_IPS:
        network = proxy_network(entry)
        if network is not None:
            networks.append(network)
        else:
            messages.append(
                checks.Error(
                    f"TRUSTED_PROXY_IPS entry {entry!r} is not an IP address or network.",
                    hint="List the reverse proxy's addresses or CIDR networks, e.g. 10.0.0.5,10.1.0.0/16.",
                    id="billing.E009",
                )
            )
    messages += _check_proxy_middleware()
    if any(network.prefixlen == 0 for network in networks):
        messages.append(
            checks.Warning(
                "TRUSTED_PROXY_IPS trusts every address: any client can claim HTTPS or another address.",
                hint="List only the reverse proxy's addresses.",
                id="billing.W003",
            )
        )
    if settings.SECURE_SSL_REDIRECT and getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and not networks:
        messages.append(
            checks.Warning(
                "SECURE_SSL_REDIRECT is on but TRUSTED_PROXY_IPS is empty: behind a TLS-terminating proxy "
                "every request looks like plain HTTP and is redirected forever.",
                hint="Set TRUSTED_PROXY_IPS to the proxy's addresses (and gunicorn trusts the same ones).",
                id="billing.W002",
            )
        )
    return messages


# Caches that live inside one process: marks set there are not seen by the others.
PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@configuration_check
def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Check that the cache is shared by every process, not kept inside each one."""
    if settings.CACHES["default"]["BACKEND"] not in PER_PROCESS_CACHES:
        return []
    return [
        checks.Warning(
            "The cache lives inside each process: one worker does not see that another has already "
            "queued a renewal or nudged the dispatcher, so work is queued again (never done twice: "
            "the rows decide, but the queues fill with runs that find nothing to do).",
            hint="Set CACHE_URL to a Redis database, e.g. redis://redis:6379/2.",
            id="billing.W004",
        )
    ]


def _check_proxy_middleware() -> list[CheckMessage]:
    middleware = list(settings.MIDDLEWARE)
    guarded = PROXY_MIDDLEWARE in middleware and (
        SECURITY_MIDDLEWARE not in middleware
        or middleware.index(PROXY_MIDDLEWARE) < middleware.index(SECURITY_MIDDLEWARE)
    )
    if guarded or not getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        return []
    return [
        checks.Error(
            "SECURE_PROXY_SSL_HEADER is set but forwarding headers are not stripped from untrusted clients.",
            hint=f"Put {PROXY_MIDDLEWARE} in MIDDLEWARE before {SECURITY_MIDDLEWARE}.",
            id="billing.E010",
        )
    ]


def refuse_to_start_if_misconfigured() -> None:
    """Under production settings, raise ImproperlyConfigured while a check above is an error.

    A process that would answer every viewer with an error must fail at start, where the
    orchestrator shows it, not on the first request.
    """
    if not settings.BILLING_PRODUCTION:
        return
    errors = [
        message
        for message in run_checks(tags=[TAG], include_deployment_checks=True)
        if message.is_serious() and not message.is_silenced()
    ]
    if errors:
        listed = "\n".join(f"  {error}" for error in errors)
        raise ImproperlyConfigured(f"Refusing to start: the configuration has errors:\n{listed}")
