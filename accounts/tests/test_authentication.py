"""Viewers prove who they are with the cinema's JWT; services with a shared key."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command

from accounts.authentication import service_key_is_valid
from accounts.models import BillingAccount

ACCESS_URL = "/api/v1/access/"
SECRET = "test-jwt-secret-0123456789abcdef0123456789"


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def hs256(claims: dict, secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def future(seconds: int = 600) -> int:
    return int(time.time()) + seconds


def assert_unauthorized(response, code: str) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert BillingAccount.objects.count() == 0


@pytest.mark.django_db
class TestViewerTokens:
    def test_missing_token_is_401_with_json_error(self, api_client):
        assert_unauthorized(api_client.get(ACCESS_URL), "not_authenticated")

    def test_401_names_the_bearer_scheme(self, api_client):
        response = api_client.get(ACCESS_URL)
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_expired_token_is_401(self, api_client):
        token = hs256({"sub": "u1", "exp": int(time.time()) - 120})
        assert_unauthorized(api_client.get(ACCESS_URL, **bearer(token)), "token_expired")

    def test_token_signed_with_another_secret_is_401(self, api_client):
        token = hs256({"sub": "u1", "exp": future()}, secret="someone-elses-secret-0123456789abcdef")
        assert_unauthorized(api_client.get(ACCESS_URL, **bearer(token)), "token_invalid")

    def test_tampered_payload_is_401(self, api_client):
        header, _, signature = hs256({"sub": "u1", "exp": future()}).split(".")
        forged_payload = jwt.utils.base64url_encode(b'{"sub":"admin","exp":9999999999}').decode()
        assert_unauthorized(
            api_client.get(ACCESS_URL, **bearer(f"{header}.{forged_payload}.{signature}")), "token_invalid"
        )

    def test_unsigned_alg_none_token_is_401(self, api_client):
        token = jwt.encode({"sub": "u1", "exp": future()}, key=None, algorithm="none")
        assert_unauthorized(api_client.get(ACCESS_URL, **bearer(token)), "token_invalid")

    @pytest.mark.parametrize("claims", [{"exp": 9999999999}, {"sub": "u1"}, {"sub": "", "exp": 9999999999}])
    def test_token_without_subject_or_expiry_is_401(self, api_client, claims):
        assert_unauthorized(api_client.get(ACCESS_URL, **bearer(hs256(claims))), "token_invalid")

    def test_numeric_subject_is_401(self, api_client):
        token = hs256({"sub": 42, "exp": future()})
        assert_unauthorized(api_client.get(ACCESS_URL, **bearer(token)), "token_invalid")

    @pytest.mark.parametrize(
        "header", ["Bearer", "Bearer a b", "Token abc", "Bearer not-a-jwt", "Bearer \u00e9\u00e9"]
    )
    def test_malformed_authorization_header_is_401(self, api_client, header):
        response = api_client.get(ACCESS_URL, HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
        assert response.json()["error"]["code"] in {"token_malformed", "token_invalid"}

    def test_valid_token_opens_the_account_on_first_request(self, api_client):
        token = hs256(
            {"sub": "cinema-user-7", "exp": future(), "email": "seven@example.com", "locale": "ru-RU"}
        )
        response = api_client.get(ACCESS_URL, **bearer(token))
        assert response.status_code == 200
        account = BillingAccount.objects.get(user_id="cinema-user-7")
        assert account.email == "seven@example.com"
        assert account.language == "ru"

    def test_second_request_reuses_the_account_and_takes_a_new_email(self, api_client):
        api_client.get(
            "/api/v1/subscriptions/", **bearer(hs256({"sub": "u9", "exp": future(), "email": "a@x.io"}))
        )
        api_client.get(
            "/api/v1/subscriptions/", **bearer(hs256({"sub": "u9", "exp": future(), "email": "b@x.io"}))
        )
        assert list(BillingAccount.objects.values_list("user_id", "email")) == [("u9", "b@x.io")]


@pytest.mark.django_db
class TestRS256:
    @pytest.fixture
    def rsa_keys(self, settings):
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_pem = (
            private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        settings.AUTH_JWT_ALGORITHM = "RS256"
        settings.AUTH_JWT_PUBLIC_KEY = public_pem
        return private_key, public_pem

    def test_token_signed_by_the_auth_service_key_is_accepted(self, api_client, rsa_keys):
        private_key, _ = rsa_keys
        token = jwt.encode({"sub": "rsa-user", "exp": future()}, private_key, algorithm="RS256")
        assert api_client.get(ACCESS_URL, **bearer(token)).status_code == 200

    def test_hs256_token_signed_with_the_public_key_is_refused(self, api_client, rsa_keys):
        # The classic algorithm-confusion attack: the public key used as an HMAC secret.
        _, public_pem = rsa_keys
        header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
        payload = jwt.utils.base64url_encode(f'{{"sub":"attacker","exp":{future()}}}'.encode())
        import hashlib
        import hmac

        signing_input = header + b"." + payload
        signature = jwt.utils.base64url_encode(
            hmac.new(public_pem.encode(), signing_input, hashlib.sha256).digest()
        )
        token = (signing_input + b"." + signature).decode()
        assert_unauthorized(api_client.get(ACCESS_URL, **bearer(token)), "token_invalid")


@pytest.mark.django_db
class TestServiceKey:
    def test_internal_endpoint_accepts_a_configured_key(self, service_client):
        assert service_client.get("/api/v1/internal/access/someone/").status_code == 200

    def test_wrong_service_key_is_401(self, api_client):
        response = api_client.get("/api/v1/internal/access/someone/", HTTP_X_SERVICE_KEY="guess")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "service_key_invalid"

    def test_no_key_is_401(self, api_client):
        assert api_client.get("/api/v1/internal/access/someone/").status_code == 401

    def test_viewer_token_cannot_use_the_internal_endpoint(self, viewer_client):
        response = viewer_client("u1").get("/api/v1/internal/access/u1/")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"

    def test_service_key_cannot_read_viewer_endpoints(self, service_client):
        assert service_client.get(ACCESS_URL).status_code == 403

    def test_key_comparison_checks_every_configured_key(self):
        keys = ["first-key", "second-key"]
        assert service_key_is_valid("second-key", keys)
        assert not service_key_is_valid("second-ke", keys)
        assert not service_key_is_valid("anything", [])


def test_issue_token_prints_a_token_the_api_accepts(capsys, db, api_client):
    call_command("issue_token", "cli-user", "--email", "cli@example.com", "--ttl", "120")
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "cli-user"
    assert claims["email"] == "cli@example.com"
    assert claims["exp"] - claims["iat"] == 120
    assert api_client.get(ACCESS_URL, **bearer(token)).status_code == 200
