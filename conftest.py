"""Fixtures shared by every app's tests."""

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from accounts.tokens import issue_token

# Hypothesis fails an example slower than 200 ms, and data generation it finds slow, by default:
# wall-clock checks that a busy machine trips. Properties are about results, not speed.
hypothesis_settings.register_profile("billing", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("billing")


@pytest.fixture
def api_client() -> APIClient:
    """Return an API client with no credentials."""
    return APIClient()


@pytest.fixture
def viewer_client() -> Callable[..., APIClient]:
    """Return a factory of API clients authenticated as a given cinema user."""

    def make(user_id: str, email: str = "") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id=user_id, email=email)}")
        return client

    return make


@pytest.fixture
def service_client() -> APIClient:
    """Return an API client authenticated as an internal cinema service."""
    client = APIClient()
    client.credentials(HTTP_X_SERVICE_KEY="test-service-key")
    return client


@pytest.fixture
def login_as(client):
    """Return a function that logs the test client in as a new staff member of a role group."""
    from accounts.tests.roles import staff_member

    def login(role: str):
        client.force_login(staff_member(role))
        return client

    return login


@pytest.fixture(autouse=True)
def _real_billing_time():
    """Start and end every test on real billing time."""
    from core import clock

    clock.reset()
    yield
    clock.reset()


@pytest.fixture(scope="session")
def _sandbox_server():
    """Start one offline Stripe sandbox for the whole test session."""
    from payments.sandbox import start_sandbox

    handle = start_sandbox(webhook_secret="whsec_billing_tests", timeout_hold_seconds=3)  # noqa: S106
    yield handle
    handle.stop()


@pytest.fixture
def memory_provider(settings):
    """Switch the payments gateway to a fresh in-memory provider; return its test handle."""
    from payments.gateways import get_gateway
    from payments.gateways.memory import MemoryGateway
    from payments.tests.memory_provider import MemoryProvider

    settings.PAYMENT_GATEWAY = "memory"
    gateway = get_gateway()
    assert isinstance(gateway, MemoryGateway)
    gateway.reset()
    return MemoryProvider(gateway)


@pytest.fixture
def stripe_sandbox(_sandbox_server, settings):
    """Point the payments gateway at a freshly reset sandbox; return its control API."""
    from payments.tests.sandbox_helpers import Control

    control = Control(_sandbox_server)
    control.post("/reset")
    control.delete("/faults")
    control.post("/config", {"webhook_url": None})
    settings.STRIPE_API_BASE = _sandbox_server.base_url
    settings.STRIPE_TIMEOUT_SECONDS = 2
    return control
