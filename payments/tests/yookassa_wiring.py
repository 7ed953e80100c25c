"""YooKassa wired in as a provider for a test: the settings, a sandbox process, a subscribed viewer.

payments/tests/conftest.py makes the fixtures `yookassa_process` (module-scoped: one sandbox
process per module) and `yookassa` (that sandbox, reset, configured for one test) available.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from rest_framework.test import APIClient

from payments.models import CheckoutSession
from payments.services.checkout import checkout_sync
from payments.tests.yookassa_helpers import YooKassaProcess, fresh, run_sandbox_process
from tariffs.models import Tariff
from tariffs.tests.factories import TariffFactory

YOOKASSA_BUILDER = "payments.gateways.yookassa.setup.gateway_from_settings"
SUCCEEDS = "5555555555554444"  # YooKassa's test card paid without 3-D Secure
VIEWER_EMAIL = "alice@example.com"


def configure_yookassa(settings: Any, api_base: str = "http://127.0.0.1:9/v3") -> None:
    """Make YooKassa one of this test's providers, its API at `api_base`."""
    settings.PAYMENT_PROVIDERS = {**settings.PAYMENT_PROVIDERS, "yookassa": YOOKASSA_BUILDER}
    settings.YOOKASSA_API_BASE = api_base
    settings.YOOKASSA_TIMEOUT_SECONDS = 2
    settings.YOOKASSA_MAX_RETRIES = 0


@pytest.fixture(scope="module")
def yookassa_process() -> Iterator[YooKassaProcess]:
    """Run one YooKassa sandbox process for the module."""
    yield from run_sandbox_process()


@pytest.fixture
def yookassa(yookassa_process: YooKassaProcess, settings: Any) -> YooKassaProcess:
    """Return the module's sandbox, reset, with YooKassa configured to use it."""
    configure_yookassa(settings, yookassa_process.api_base)
    return fresh(yookassa_process)


def yookassa_tariff(**fields: Any) -> Tariff:
    """Return an active monthly tariff paid through YooKassa (in roubles)."""
    values: dict[str, Any] = {
        "slug": "monthly-yk",
        "name": "Monthly",
        "amount": 39900,
        "currency": "RUB",
        "provider": "yookassa",
    }
    values.update(fields)
    return cast(Tariff, TariffFactory(**values))


def subscribe(client: APIClient, tariff: Tariff) -> dict[str, Any]:
    """Subscribe through the API and return the 201 answer's body."""
    response = client.post("/api/v1/subscriptions/", {"tariff": tariff.slug}, format="json")
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


def pay_and_settle(sandbox: YooKassaProcess, checkout_id: str, card: str = SUCCEEDS) -> CheckoutSession:
    """Pay a checkout's YooKassa page with a test card and settle it as the result page would."""
    checkout = CheckoutSession.objects.get(pk=checkout_id)
    assert checkout.provider_session_id
    sandbox.pay(checkout.provider_session_id, card)
    checkout_sync(provider_session_id=checkout.provider_session_id, provider="yookassa")
    checkout.refresh_from_db()
    return checkout


def posts(sandbox: YooKassaProcess, path: str) -> list[dict[str, Any]]:
    """Return the POST requests the sandbox answered on `path` (200s and errors alike)."""
    return [r for r in sandbox.requests() if r.get("method") == "POST" and r.get("path") == path]
