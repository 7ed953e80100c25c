"""Payment gateways: one interface (`base`), one module per provider, and `get_gateway()`.

Settings are read when `get_gateway()` is called, never at import time, so tests can override
them and the gateway follows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.gateways.base import PaymentGateway

__all__ = ["PaymentGateway", "get_gateway", "is_stripe_api_base"]


@dataclass(frozen=True, slots=True)
class _GatewaySettings:
    api_key: str
    webhook_secret: str
    api_base: str
    api_version: str
    timeout: float
    max_retries: int
    production: bool
    rate_limit_per_second: float
    rate_limit_redis_url: str


def get_gateway() -> PaymentGateway:
    """Return the payment gateway chosen by `PAYMENT_GATEWAY` and configured by the settings.

    "stripe" (the default): one instance is kept per distinct set of values, so its HTTP
    connections are reused. Every call it sends to Stripe first takes a token from the
    outgoing rate limit (`STRIPE_RATE_LIMIT_PER_SECOND`, shared through
    `STRIPE_RATE_LIMIT_REDIS_URL`).
    "memory": the one in-memory provider of this process, for unit tests of domain rules.
    """
    name = getattr(settings, "PAYMENT_GATEWAY", "stripe") or "stripe"
    if name == "memory":
        return _memory_gateway(production=bool(getattr(settings, "BILLING_PRODUCTION", False)))
    if name != "stripe":
        raise ImproperlyConfigured(f"PAYMENT_GATEWAY={name!r} is not one of: stripe, memory")
    return _build_gateway(
        _GatewaySettings(
            api_key=getattr(settings, "STRIPE_SECRET_KEY", "") or "",
            webhook_secret=getattr(settings, "STRIPE_WEBHOOK_SECRET", "") or "",
            api_base=getattr(settings, "STRIPE_API_BASE", "") or "",
            api_version=getattr(settings, "STRIPE_API_VERSION", "") or "",
            timeout=float(getattr(settings, "STRIPE_TIMEOUT_SECONDS", 10)),
            max_retries=int(getattr(settings, "STRIPE_MAX_RETRIES", 2)),
            production=bool(getattr(settings, "BILLING_PRODUCTION", False)),
            rate_limit_per_second=float(getattr(settings, "STRIPE_RATE_LIMIT_PER_SECOND", 25)),
            rate_limit_redis_url=getattr(settings, "STRIPE_RATE_LIMIT_REDIS_URL", "") or "",
        )
    )


def is_stripe_api_base(url: str) -> bool:
    """Return whether `url` is an HTTPS address on Stripe's own domain."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "stripe.com" or host.endswith(".stripe.com"))


def _memory_gateway(*, production: bool) -> PaymentGateway:
    # Like the sandbox, it accepts every test card and moves no money.
    if production:
        raise ImproperlyConfigured("PAYMENT_GATEWAY='memory' cannot be used when BILLING_PRODUCTION is true")
    return _shared_memory_gateway()


@functools.cache
def _shared_memory_gateway() -> PaymentGateway:
    # Imported here so that a deployment never loads the test provider (nor the sandbox's cards).
    from core import clock
    from payments.gateways.memory import MemoryGateway

    # Pages are stamped with the billing clock, as the sandbox follows it; their lives run on
    # real time, as the service measures them.
    return MemoryGateway(now=clock.now)


@functools.lru_cache(maxsize=8)
def _build_gateway(config: _GatewaySettings) -> PaymentGateway:
    if not config.api_key:
        raise ImproperlyConfigured("STRIPE_SECRET_KEY is not set")
    # The offline sandbox (or any emulator) accepts every card and moves no money: pointing a
    # production deployment at it would hand out access for free, so refuse to start at all.
    if config.production and config.api_base and not is_stripe_api_base(config.api_base):
        raise ImproperlyConfigured(
            f"STRIPE_API_BASE={config.api_base!r} is not Stripe; "
            "a Stripe sandbox cannot be used when BILLING_PRODUCTION is true"
        )
    # Imported here so that importing this package does not load the Stripe SDK.
    from payments.gateways.ratelimit import build_rate_limiter, limit_name
    from payments.gateways.stripe import StripeGateway

    if config.rate_limit_per_second < 0:
        raise ImproperlyConfigured("STRIPE_RATE_LIMIT_PER_SECOND must be 0 (no limit) or more")
    # One bucket per Stripe account for all its endpoints, so each endpoint stays under the
    # rate whatever the mix of calls; a call waits for its token no longer than it would
    # wait for Stripe's answer.
    limiter = build_rate_limiter(
        name=limit_name("stripe", config.api_key),
        rate=config.rate_limit_per_second,
        redis_url=config.rate_limit_redis_url,
        max_wait=config.timeout,
    )
    return StripeGateway(
        api_key=config.api_key,
        webhook_secret=config.webhook_secret,
        api_base=config.api_base or None,
        api_version=config.api_version or None,
        timeout=config.timeout,
        max_retries=config.max_retries,
        limiter=limiter,
    )
