"""Payment gateways: one interface (`base`), one package or module per provider, one registry.

The registry is `PAYMENT_PROVIDERS`: each provider's name (the value of the `provider`
column on payments, refunds and checkout pages) maps to the dotted path of a function that
builds its gateway from the settings. Adding a provider is adding its package and a line in
that setting (and its name to `payments.models.Provider`).

Settings are read when `get_gateway()` is called, never at import time, so tests can override
them and the gateway follows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from payments.gateways.interface import PaymentGateway
from payments.gateways.stripe_setup import is_stripe_api_base

__all__ = ["PaymentGateway", "UnknownProvider", "default_provider", "get_gateway", "is_stripe_api_base"]

# What each provider's gateway is built by, unless the settings say otherwise.
DEFAULT_PROVIDERS = {"stripe": "payments.gateways.stripe_setup.gateway_from_settings"}


class UnknownProvider(ImproperlyConfigured):
    """A provider name that `PAYMENT_PROVIDERS` does not list."""


def configured_providers() -> dict[str, str]:
    """Return every provider this deployment takes payments through, with its gateway builder."""
    return dict(getattr(settings, "PAYMENT_PROVIDERS", None) or DEFAULT_PROVIDERS)


def default_provider() -> str:
    """Return the provider new payments go through (`DEFAULT_PAYMENT_PROVIDER`)."""
    name: str = getattr(settings, "DEFAULT_PAYMENT_PROVIDER", "") or "stripe"
    if name not in configured_providers():
        raise UnknownProvider(f"DEFAULT_PAYMENT_PROVIDER={name!r} is not in PAYMENT_PROVIDERS")
    return name


def get_gateway(provider: str | None = None) -> PaymentGateway:
    """Return the gateway of `provider` (by default, the default provider).

    With `PAYMENT_GATEWAY = "memory"` (unit tests only) the one in-memory provider of this
    process answers for every provider, as the offline sandbox does for Stripe in `make run`.
    Raises UnknownProvider for a name `PAYMENT_PROVIDERS` does not list.
    """
    name = provider or default_provider()
    builders = configured_providers()
    if name not in builders:
        raise UnknownProvider(f"{name!r} is not one of the payment providers: {', '.join(sorted(builders))}")
    fake = getattr(settings, "PAYMENT_GATEWAY", "") or ""
    if fake == "memory":
        return _memory_gateway(production=bool(getattr(settings, "BILLING_PRODUCTION", False)))
    if fake:
        raise ImproperlyConfigured(f"PAYMENT_GATEWAY={fake!r}: only 'memory' (or nothing) is known")
    return _builder(builders[name])()


@functools.cache
def _builder(path: str) -> Callable[[], PaymentGateway]:
    builder: Callable[[], PaymentGateway] = import_string(path)
    return builder


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
