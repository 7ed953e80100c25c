"""YooKassa's gateway as the settings configure it: shop, secret key, API base, timeouts, receipts.

Read when the registry asks for the gateway, never at import time; every setting has a default
through getattr, so none needs to exist yet. One instance is kept per distinct set of values.

| setting | default |
| --- | --- |
| YOOKASSA_SHOP_ID, YOOKASSA_SECRET_KEY | required |
| YOOKASSA_API_BASE | https://api.yookassa.ru/v3 |
| YOOKASSA_TIMEOUT_SECONDS | 10 |
| YOOKASSA_MAX_RETRIES | 2 |
| YOOKASSA_RATE_LIMIT_PER_SECOND | 10 (0: no limit) |
| YOOKASSA_RATE_LIMIT_REDIS_URL | "" (a limit per process) |
| YOOKASSA_VAT_CODE | 11 (VAT 22%, Russia's standard rate from 1 January 2026) |
| YOOKASSA_PAYMENT_SUBJECT | service |
| YOOKASSA_PAYMENT_MODE | full_payment |
| YOOKASSA_RECEIPTS | True |
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.gateways.interface import PaymentGateway


@dataclass(frozen=True, slots=True)
class _YooKassaSettings:
    shop_id: str
    secret_key: str
    api_base: str
    timeout: float
    max_retries: int
    rate_limit_per_second: float
    rate_limit_redis_url: str
    vat_code: int
    payment_subject: str
    payment_mode: str
    receipts: bool
    production: bool


def gateway_from_settings() -> PaymentGateway:
    """Return the YooKassa gateway the `YOOKASSA_*` settings describe."""
    return _build_gateway(
        _YooKassaSettings(
            shop_id=str(getattr(settings, "YOOKASSA_SHOP_ID", "") or ""),
            secret_key=str(getattr(settings, "YOOKASSA_SECRET_KEY", "") or ""),
            api_base=str(getattr(settings, "YOOKASSA_API_BASE", "") or "https://api.yookassa.ru/v3"),
            timeout=float(getattr(settings, "YOOKASSA_TIMEOUT_SECONDS", 10)),
            max_retries=int(getattr(settings, "YOOKASSA_MAX_RETRIES", 2)),
            rate_limit_per_second=float(getattr(settings, "YOOKASSA_RATE_LIMIT_PER_SECOND", 10)),
            rate_limit_redis_url=str(getattr(settings, "YOOKASSA_RATE_LIMIT_REDIS_URL", "") or ""),
            vat_code=int(getattr(settings, "YOOKASSA_VAT_CODE", 11)),
            payment_subject=str(getattr(settings, "YOOKASSA_PAYMENT_SUBJECT", "service")),
            payment_mode=str(getattr(settings, "YOOKASSA_PAYMENT_MODE", "full_payment")),
            receipts=bool(getattr(settings, "YOOKASSA_RECEIPTS", True)),
            production=bool(getattr(settings, "BILLING_PRODUCTION", False)),
        )
    )


def is_yookassa_api_base(url: str) -> bool:
    """Return whether `url` is an HTTPS address on YooKassa's own domain."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "yookassa.ru" or host.endswith(".yookassa.ru"))


@functools.lru_cache(maxsize=8)
def _build_gateway(config: _YooKassaSettings) -> PaymentGateway:
    if not config.shop_id or not config.secret_key:
        raise ImproperlyConfigured("YOOKASSA_SHOP_ID and YOOKASSA_SECRET_KEY must be set")
    # The offline sandbox accepts every test card and moves no money: never in production.
    if config.production and not is_yookassa_api_base(config.api_base):
        raise ImproperlyConfigured(
            f"YOOKASSA_API_BASE={config.api_base!r} is not YooKassa; "
            "a YooKassa sandbox cannot be used when BILLING_PRODUCTION is true"
        )
    if config.rate_limit_per_second < 0:
        raise ImproperlyConfigured("YOOKASSA_RATE_LIMIT_PER_SECOND must be 0 (no limit) or more")
    # Imported here so that reading the settings does not load the SDK.
    from payments.gateways.ratelimit import build_rate_limiter, limit_name
    from payments.gateways.yookassa.gateway import YooKassaGateway
    from payments.gateways.yookassa.payloads import ReceiptSettings

    limiter = build_rate_limiter(
        name=limit_name("yookassa", config.shop_id),
        rate=config.rate_limit_per_second,
        redis_url=config.rate_limit_redis_url,
        max_wait=config.timeout,
    )
    gateway: PaymentGateway = YooKassaGateway(
        shop_id=config.shop_id,
        secret_key=config.secret_key,
        api_base=config.api_base,
        timeout=config.timeout,
        max_retries=config.max_retries,
        receipts=ReceiptSettings(
            vat_code=config.vat_code,
            payment_subject=config.payment_subject,
            payment_mode=config.payment_mode,
            enabled=config.receipts,
        ),
        limiter=limiter,
    )
    return gateway
