"""Requests generated from the service's own OpenAPI schema: none is a 5xx, every answer is
documented and matches its schema.

schemathesis reads `/api/schema/` from the WSGI application and sends each operation a
bounded, derandomized set of generated requests (valid and invalid ones) on the test
database and the offline Stripe sandbox: viewers with a valid token, internal operations with
the service key.
"""

import json
from collections.abc import Iterator

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi import checks as openapi_checks

from accounts.tokens import issue_token
from config.wsgi import application
from payments.tests.stripe_signing import sign
from tariffs.tests.factories import TariffFactory

SERVICE_KEY = "test-service-key"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


# Loaded when the module is collected: generating the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def wsgi_on_the_test_database(stripe_sandbox) -> Iterator[None]:
    """Let the WSGI application answer inside the test's transaction, with a tariff to find.

    Checkouts are opened at the offline Stripe sandbox, so subscribing can succeed.
    """
    TariffFactory(slug="monthly")
    # The WSGI handler would close the test's connection (and its transaction) after each
    # request, as it does in production; the test client disconnects this the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def credentials(path: str) -> dict[str, str]:
    """Return the headers of the caller an operation expects."""
    if path.startswith("/api/v1/internal/"):
        return {"X-Service-Key": SERVICE_KEY}
    return {"Authorization": f"Bearer {issue_token(user_id='fuzz-viewer')}"}


@schema.parametrize()
@settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_generated_requests_get_documented_answers(case):
    case.call_and_validate(headers=credentials(case.path), checks=CHECKS)


# --- the Stripe webhook, signed -------------------------------------------------------------
# Its schema has no body (Stripe's events are not ours to describe), and unsigned bodies are
# refused before they are read: so hostile bodies are also generated here and signed.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Mostly well-formed events, so that most examples get past parsing to the store.
events = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=300) | json_values,
        "type": st.sampled_from(["charge.refunded", "checkout.session.completed"]) | st.text(min_size=1),
        "created": st.integers(min_value=0, max_value=2**31) | st.floats() | json_values,
        "data": st.fixed_dictionaries({"object": st.dictionaries(st.text(max_size=8), json_values)}),
    }
)


@given(event=events)
@settings(max_examples=100, derandomize=True, database=None, deadline=None)
def test_signed_webhook_bodies_never_get_a_server_error(event):
    body = json.dumps(event).encode()
    response = Client(raise_request_exception=False).post(
        "/api/v1/webhooks/stripe/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, django_settings.STRIPE_WEBHOOK_SECRET),
    )
    assert response.status_code in (200, 400), response.content
