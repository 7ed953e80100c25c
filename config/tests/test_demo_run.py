"""What a first-time operator meets in `make run`: docs that work offline, the right security
in them, `/` and "View site" leading to the storefront, a Russian token, one line per email."""

import logging
from io import StringIO

import jwt
import pytest
from django.contrib.staticfiles import finders
from django.core.mail import EmailMultiAlternatives
from django.core.management import call_command

from accounts.tokens import decode_token
from config.mail import DemoFileEmailBackend


@pytest.fixture
def schema(api_client):
    return api_client.get("/api/schema/?format=json").json()


def test_api_docs_load_swagger_ui_from_our_own_static_files(client):
    html = client.get("/api/docs/").content.decode()
    assert "cdn" not in html.lower()
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        path = f"drf_spectacular_sidecar/swagger-ui-dist/{asset}"
        assert f"/static/{path}" in html
        assert finders.find(path), f"{path} is not among our static files"


def test_probes_are_in_the_api_docs(schema):
    assert schema["paths"]["/healthz/"]["get"]["responses"]["200"]
    assert set(schema["paths"]["/readyz/"]["get"]["responses"]) >= {"200", "503"}


def test_each_operation_lists_only_the_credentials_it_accepts(schema):
    security = {
        (method, path): [name for requirement in operation.get("security", []) for name in requirement]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert security[("get", "/api/v1/internal/access/{user_id}/")] == ["ServiceKey"]
    for (method, path), names in security.items():
        if path.startswith(("/api/v1/subscriptions/", "/api/v1/payments/", "/api/v1/access/")):
            assert names == ["ViewerJWT"], f"{method} {path}"
    assert "`locale`" in schema["components"]["securitySchemes"]["ViewerJWT"]["description"]


@pytest.mark.django_db
def test_root_and_the_admins_view_site_lead_to_the_storefront(client, login_as):
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/storefront/")
    admin_index = login_as("Support").get("/admin/").content.decode()
    assert 'href="/storefront/">View site' in admin_index


def test_root_is_not_found_without_the_storefront(client, settings):
    settings.STOREFRONT_ENABLED = False
    assert client.get("/").status_code == 404


def test_issue_token_with_locale_ru_signs_in_a_russian_viewer():
    out = StringIO()
    call_command("issue_token", "ivan", "--locale", "ru", stdout=out)
    token = out.getvalue().strip()
    assert jwt.decode(token, options={"verify_signature": False})["locale"] == "ru"
    assert decode_token(token).language == "ru"


def test_demo_email_backend_writes_the_email_and_logs_one_line(tmp_path, caplog):
    message = EmailMultiAlternatives(
        subject="Оплата получена",
        body="Спасибо",
        to=["ivan@example.com"],
        headers={"X-Billing-Notice": "7", "X-Billing-Notice-Kind": "payment_succeeded"},
        connection=DemoFileEmailBackend(file_path=str(tmp_path)),
    )
    with caplog.at_level(logging.INFO, logger="config.mail"):
        assert message.send() == 1
    [written] = tmp_path.iterdir()
    assert "ivan@example.com" in written.read_text()
    [line] = [record.getMessage() for record in caplog.records if record.name == "config.mail"]
    assert line.startswith("email payment_succeeded to ivan@example.com: Оплата получена (")


@pytest.mark.django_db
def test_seed_demo_prints_a_service_key_that_opens_the_internal_endpoint(settings, api_client):
    settings.BILLING_SERVICE_KEYS = ["demo-service-key-local-only"]
    out = StringIO()
    call_command("seed_demo", base_url="http://127.0.0.1:8123", stdout=out)
    banner = out.getvalue()
    assert "X-Service-Key: demo-service-key-local-only" in banner
    assert "http://127.0.0.1:8123/api/v1/internal/access/demo-viewer/" in banner
    answer = api_client.get(
        "/api/v1/internal/access/demo-viewer/", HTTP_X_SERVICE_KEY="demo-service-key-local-only"
    )
    assert answer.status_code == 200
