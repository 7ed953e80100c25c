"""What the edge refuses or corrects before any view: NUL characters, forged proxy headers,
and HTML answers under /api/."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings
from rest_framework.test import APIClient

from accounts.models import BillingAccount
from config.middleware import TrustedProxyMiddleware
from core.errors import json_csrf_failure

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def error_code(response) -> str:
    return json.loads(response.content)["error"]["code"]


class TestNulCharacters:
    def test_nul_in_the_internal_access_user_id_is_400(self, service_client):
        response = service_client.get("/api/v1/internal/access/user%00one/")
        assert (response.status_code, error_code(response)) == (400, "null_character")

    def test_nul_in_the_query_string_is_400(self, viewer_client):
        response = viewer_client("alice").get("/api/v1/subscriptions/?page=1%00")
        assert (response.status_code, error_code(response)) == (400, "null_character")
        assert BillingAccount.objects.count() == 0

    def test_nul_in_a_header_is_400(self, viewer_client):
        response = viewer_client("alice").post(
            "/api/v1/subscriptions/",
            {"tariff": "monthly"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="key\x00",
        )
        assert (response.status_code, error_code(response)) == (400, "null_character")

    def test_nul_in_the_session_cookie_is_a_plain_400_in_admin(self):
        client = Client()
        client.cookies["sessionid"] = "abcdefgh\x00ijkl"
        response = client.get("/admin/")
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/plain")


class TestApiAnswersJsonOnly:
    @pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "get"])
    def test_unknown_api_path_is_a_json_404_whatever_the_method(self, method):
        client = APIClient(enforce_csrf_checks=True)
        response = getattr(client, method)("/api/v1/no-such-endpoint/", {"a": 1}, format="json")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert error_code(response) == "not_found"

    def test_csrf_failure_under_api_is_json(self):
        request = RequestFactory().post("/api/v1/anything/")
        response = json_csrf_failure(request, reason="CSRF cookie not set.")
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"
        assert error_code(response) == "csrf_failed"

    def test_csrf_failure_in_admin_keeps_djangos_page(self):
        response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x", "password": "y"})
        assert response.status_code == 403
        assert response["Content-Type"].startswith("text/html")


def scheme_seen(remote_addr: str, trusted: list[str], forwarded_proto: str) -> bool:
    """Return whether a request from `remote_addr` saying `X-Forwarded-Proto` looks secure to Django."""
    seen: list[bool] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(request.is_secure())
        return HttpResponse()

    with override_settings(
        TRUSTED_PROXY_IPS=trusted, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")
    ):
        request = RequestFactory().get("/", REMOTE_ADDR=remote_addr, HTTP_X_FORWARDED_PROTO=forwarded_proto)
        TrustedProxyMiddleware(view)(request)
    return seen[0]


class TestForwardedHeaders:
    def test_any_client_cannot_claim_https_when_no_proxy_is_trusted(self):
        assert scheme_seen("203.0.113.7", [], "https") is False

    def test_a_client_outside_the_trusted_proxies_cannot_claim_https(self):
        assert scheme_seen("203.0.113.7", ["10.0.0.0/8"], "https") is False

    @pytest.mark.parametrize("trusted", [["10.0.0.5"], ["10.0.0.0/8"], ["bogus", "10.0.0.0/8"]])
    def test_the_trusted_proxy_tells_https(self, trusted):
        assert scheme_seen("10.0.0.5", trusted, "https") is True

    def test_forwarded_for_is_stripped_from_an_untrusted_client(self):
        kept: list[dict[str, str]] = []

        def view(request: HttpRequest) -> HttpResponse:
            kept.append({k: v for k, v in request.META.items() if k.startswith("HTTP_X_FORWARDED")})
            return HttpResponse()

        with override_settings(TRUSTED_PROXY_IPS=["10.0.0.5"]):
            middleware = TrustedProxyMiddleware(view)
            middleware(RequestFactory().get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="10.0.0.1"))
            middleware(RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.2"))
        assert kept == [{}, {"HTTP_X_FORWARDED_FOR": "198.51.100.2"}]

    def test_the_middleware_runs_before_the_security_middleware(self, settings):
        order = list(settings.MIDDLEWARE)
        assert order.index("config.middleware.TrustedProxyMiddleware") < order.index(
            "django.middleware.security.SecurityMiddleware"
        )

    @override_settings(
        SECURE_SSL_REDIRECT=True,
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        TRUSTED_PROXY_IPS=[],
        SECURE_REDIRECT_EXEMPT=[],
    )
    def test_a_forged_header_does_not_skip_the_https_redirect_end_to_end(self):
        response = Client().get("/api/v1/tariffs/", HTTP_X_FORWARDED_PROTO="https")
        assert response.status_code == 301
        assert response["Location"].startswith("https://")


@pytest.mark.parametrize(
    ("trusted", "printed"), [("", "[]"), ("10.0.0.0/8,192.168.1.7", "['10.0.0.0/8', '192.168.1.7']")]
)
def test_gunicorn_trusts_the_same_proxies_as_django(trusted, printed):
    result = subprocess.run(  # noqa: S603 - the image's gunicorn on this repository's config
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--config",
            "config/gunicorn.conf.py",
            "--print-config",
            "config.wsgi:application",
        ],
        cwd=ROOT,
        env={**os.environ, "TRUSTED_PROXY_IPS": trusted},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    settings_printed = dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition("=") for line in result.stdout.splitlines())
    )
    assert settings_printed["forwarded_allow_ips"] == printed
