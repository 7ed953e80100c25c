"""A polling frontend's token is verified once per process, and never trusted past its expiry."""

import time
from datetime import datetime

import jwt
import pytest

from accounts import authentication
from accounts.token_cache import VerifiedTokens, verified_tokens
from accounts.tokens import TokenClaims

ACCESS_URL = "/api/v1/access/"
SECRET = "test-jwt-secret-0123456789abcdef0123456789"
CONFIG = ("HS256", SECRET, "", "", "")
CLAIMS = TokenClaims(user_id="u1", email="", language="en", expires_at=1010.0)

pytestmark = pytest.mark.django_db


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def hs256(claims: dict, secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture(autouse=True)
def _empty_cache():
    verified_tokens.clear()
    yield
    verified_tokens.clear()


@pytest.fixture
def verifications(monkeypatch) -> list[str]:
    """Record every token that goes through full verification."""
    seen: list[str] = []
    decode = authentication.decode_token

    def counting(token: str) -> TokenClaims:
        seen.append(token)
        return decode(token)

    monkeypatch.setattr(authentication, "decode_token", counting)
    return seen


def test_repeated_token_is_verified_once(api_client, verifications):
    token = hs256({"sub": "poller", "exp": int(time.time()) + 600})
    for _ in range(3):
        assert api_client.get(ACCESS_URL, **bearer(token)).status_code == 200
    assert verifications == [token]


def test_refused_token_is_verified_again_every_time(api_client, verifications):
    token = hs256(
        {"sub": "u1", "exp": int(time.time()) + 600}, secret="someone-elses-secret-0123456789abcdef"
    )
    for _ in range(2):
        response = api_client.get(ACCESS_URL, **bearer(token))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_invalid"
    assert verifications == [token, token]
    assert len(verified_tokens) == 0


def test_token_is_refused_once_expired_even_after_it_was_verified(api_client, settings, monkeypatch):
    settings.AUTH_JWT_LEEWAY_SECONDS = 0
    now = float(int(time.time()))
    # The cache and PyJWT read this clock, so the test decides when the token expires.
    monkeypatch.setattr(verified_tokens, "_clock", lambda: now)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(now, tz)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Frozen)
    token = hs256({"sub": "short-lived", "exp": int(now) + 1})
    assert api_client.get(ACCESS_URL, **bearer(token)).status_code == 200
    now += 1
    response = api_client.get(ACCESS_URL, **bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


def test_rotated_secret_refuses_a_token_verified_under_the_old_one(api_client, settings):
    token = hs256({"sub": "u1", "exp": int(time.time()) + 600})
    assert api_client.get(ACCESS_URL, **bearer(token)).status_code == 200
    settings.AUTH_JWT_SECRET = "the-new-secret-0123456789abcdef0123456789"
    response = api_client.get(ACCESS_URL, **bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_kept_token_is_not_trusted_at_or_after_its_exp():
    now = [1000.0]
    tokens = VerifiedTokens(clock=lambda: now[0])
    tokens.put("t", CONFIG, claims=CLAIMS, expires_at=1010.0)
    assert tokens.get("t", CONFIG) == CLAIMS
    now[0] = 1010.0
    assert tokens.get("t", CONFIG) is None
    assert len(tokens) == 0


def test_kept_token_is_tied_to_the_configuration_that_verified_it():
    tokens = VerifiedTokens(clock=lambda: 0.0)
    tokens.put("t", CONFIG, claims=CLAIMS, expires_at=10.0)
    assert tokens.get("t", ("HS256", "another-secret", "", "", "")) is None
    assert tokens.get("t", ("HS256", SECRET, "", "", "audience")) is None


def test_cache_is_bounded():
    tokens = VerifiedTokens(max_tokens=2, clock=lambda: 0.0)
    for name in "abc":
        tokens.put(name, CONFIG, claims=CLAIMS, expires_at=10.0)
    assert len(tokens) == 2
    assert tokens.get("a", CONFIG) is None
    assert tokens.get("c", CONFIG) == CLAIMS
