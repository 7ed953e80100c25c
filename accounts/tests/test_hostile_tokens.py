"""A token whose subject cannot be a user id is a 401; a verifier without a key is a 503, not a 500."""

import time

import jwt
import pytest

from accounts.models import BillingAccount
from accounts.principals import MAX_USER_ID_LENGTH

ACCESS_URL = "/api/v1/access/"
SECRET = "test-jwt-secret-0123456789abcdef0123456789"
pytestmark = pytest.mark.django_db


def bearer(claims: dict) -> dict[str, str]:
    token = jwt.encode({"exp": int(time.time()) + 600, **claims}, SECRET, algorithm="HS256")
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.parametrize(
    "subject",
    ["user\x00one", "\x00", "line\nbreak", "x" * (MAX_USER_ID_LENGTH + 1)],
    ids=["nul inside", "only nul", "control character", "longer than the column"],
)
def test_subject_that_cannot_be_a_user_id_is_401(api_client, subject):
    response = api_client.get(ACCESS_URL, **bearer({"sub": subject}))
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_invalid")
    assert BillingAccount.objects.count() == 0


def test_subject_as_long_as_the_column_opens_an_account(api_client):
    subject = "x" * MAX_USER_ID_LENGTH
    response = api_client.get(ACCESS_URL, **bearer({"sub": subject}))
    assert response.status_code == 200
    assert BillingAccount.objects.get().user_id == subject


def test_email_with_a_nul_is_dropped_and_the_viewer_served(api_client):
    response = api_client.get(ACCESS_URL, **bearer({"sub": "alice", "email": "alice\x00@example.com"}))
    assert response.status_code == 200
    assert BillingAccount.objects.get().email == ""


class TestMisconfiguredVerifier:
    def assert_unavailable(self, response) -> None:
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "authentication_unavailable"
        assert BillingAccount.objects.count() == 0

    def test_empty_hs256_secret_is_503(self, api_client, settings):
        headers = bearer({"sub": "alice"})
        settings.AUTH_JWT_SECRET = ""
        self.assert_unavailable(api_client.get(ACCESS_URL, **headers))

    def test_unknown_algorithm_is_503(self, api_client, settings):
        headers = bearer({"sub": "alice"})
        settings.AUTH_JWT_ALGORITHM = "HS999"
        self.assert_unavailable(api_client.get(ACCESS_URL, **headers))

    @pytest.mark.parametrize("public_key", ["", "not a PEM"], ids=["empty", "unparsable"])
    def test_rs256_without_a_usable_public_key_is_503(self, api_client, settings, public_key):
        from cryptography.hazmat.primitives.asymmetric import rsa

        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, private_key, algorithm="RS256")
        settings.AUTH_JWT_ALGORITHM = "RS256"
        settings.AUTH_JWT_PUBLIC_KEY = public_key
        self.assert_unavailable(api_client.get(ACCESS_URL, HTTP_AUTHORIZATION=f"Bearer {token}"))

    def test_anonymous_endpoints_keep_working(self, api_client, settings):
        settings.AUTH_JWT_SECRET = ""
        assert api_client.get("/api/v1/tariffs/").status_code == 200
