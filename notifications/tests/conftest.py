"""Fixtures of the notification tests: paid subscriptions, a local receiver, its endpoint."""

import pytest

from billing.tests.conftest import monthly_tariff, paid_subscription  # noqa: F401 (fixtures used here)
from notifications.models import EventEndpoint
from notifications.tests.receiver import LocalReceiver

SECRET = "whsec_test_receiver_secret"


@pytest.fixture
def receiver():
    """Return a local HTTP receiver on 127.0.0.1 that answers 200 until told otherwise."""
    local = LocalReceiver()
    local.start()
    yield local
    local.stop()


@pytest.fixture
def endpoint(receiver) -> EventEndpoint:
    """Return an admin-managed endpoint pointing at the local receiver, for every event type."""
    return EventEndpoint.objects.create(name="access service", url=receiver.url, secret=SECRET)
