"""With PostgreSQL unreachable every endpoint answers 503, JSON under /api/, never a 500.

The outage is real: the connection is pointed at a closed port for the test, so the driver
fails to connect exactly as it does when the server is down.
"""

import json
import socket
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.tokens import issue_token


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def database_down(django_db_blocker) -> Iterator[None]:
    """Point the default connection at a port nobody listens on; restore it afterwards."""
    with django_db_blocker.unblock():
        saved = dict(connection.settings_dict)
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)


def assert_service_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == "service_unavailable"
    assert response["Retry-After"]


def viewer() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id='alice')}")
    return client


@pytest.mark.usefixtures("database_down")
class TestDatabaseDown:
    @pytest.mark.parametrize(
        "url", ["/api/v1/access/", "/api/v1/subscriptions/", "/api/v1/payments/"], ids=str
    )
    def test_viewer_reads_are_503(self, url):
        assert_service_unavailable(viewer().get(url))

    def test_subscribing_is_503(self):
        assert_service_unavailable(
            viewer().post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json")
        )

    def test_anonymous_catalogue_is_503(self):
        assert_service_unavailable(APIClient().get("/api/v1/tariffs/"))

    def test_internal_access_is_503(self, service_client):
        assert_service_unavailable(service_client.get("/api/v1/internal/access/alice/"))

    def test_admin_page_is_a_plain_503(self):
        # The session is read from the database by a middleware (auditlog's), outside any
        # view: Django answers with handler500, which tells an outage from a bug.
        client = Client(raise_request_exception=False)
        client.cookies["sessionid"] = "s" * 32
        response = client.get("/admin/")
        assert response.status_code == 503
        assert response["Content-Type"].startswith("text/plain")

    def test_checkout_result_page_is_a_plain_503(self):
        response = Client().get(f"/checkout/success/?checkout={uuid.uuid4()}")
        assert response.status_code == 503
        assert response["Content-Type"].startswith("text/plain")

    def test_liveness_stays_up_and_readiness_says_unavailable(self):
        assert Client().get("/healthz/").status_code == 200
        assert Client().get("/readyz/").status_code == 503
