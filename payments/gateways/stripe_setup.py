"""Stripe's gateway as the settings configure it: keys, API base, timeouts and the rate limit.

Read when the registry asks for the gateway, never at import time, so tests can override the
settings and the gateway follows. One instance is kept per distinct set of values, so its HTTP
connections are reused.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.gateways.interface import PaymentGateway


@dataclass(frozen=True, slots=True)
class _StripeSettings:
    api_key: str
    webhook_secret: str
    api_base: str
    api_version: str
    timeout: float
    max_retries: int
    production: bool
    rate_limit_per_second: float
    rate_limit_redis_url: str


def gateway_from_settings() -> PaymentGateway:
    """Return the Stripe gateway the `STRIPE_*` settings describe.

    Every call it sends to Stripe first takes a token from the outgoing rate limit
    (`STRIPE_RATE_LIMIT_PER_SECOND`, shared through `STRIPE_RATE_LIMIT_REDIS_URL`).
    """
    return _build_gateway(
        _StripeSettings(
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


@functools.lru_cache(maxsize=8)
def _build_gateway(config: _StripeSettings) -> PaymentGateway:
    if not config.api_key:
        raise ImproperlyConfigured("STRIPE_SECRET_KEY is not set")
    # The offline sandbox (or any emulator) accepts every card and moves no money: pointing a
    # production deployment at it would hand out access for free, so refuse to start at all.
    if config.production and config.api_base and not is_stripe_api_base(config.api_base):
        raise ImproperlyConfigured(
            f"STRIPE_API_BASE={config.api_base!r} is not Stripe; "
            "a Stripe sandbox cannot be used when BILLING_PRODUCTION is true"
        )
    # Imported here so that reading the settings does not load the Stripe SDK.
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
