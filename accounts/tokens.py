"""The cinema auth service's JWTs: verify them, and issue them for demos and tests."""

import time
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings

from accounts.principals import is_valid_user_id

# Claims without which a token is refused.
REQUIRED_CLAIMS = ["exp", "sub"]
SUPPORTED_ALGORITHMS = ("HS256", "RS256")
MAX_EMAIL_LENGTH = 254


class TokenError(Exception):
    """A token was refused; `code` says why in a machine-readable way."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class VerifierMisconfigured(Exception):
    """This service cannot verify any token: its algorithm or key setting is unusable.

    The caller is not at fault, so this is no TokenError: the request cannot be answered
    until an operator fixes the settings (`manage.py check --deploy` names the problem).
    """


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    email: str
    language: str
    # The token's `exp` (Unix seconds), verified: how long its claims may be trusted.
    expires_at: float


def _verification_key() -> str:
    """Return the key tokens are verified with; raise VerifierMisconfigured if there is none."""
    algorithm = settings.AUTH_JWT_ALGORITHM
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise VerifierMisconfigured(f"AUTH_JWT_ALGORITHM {algorithm!r} is not one of {SUPPORTED_ALGORITHMS}")
    key = settings.AUTH_JWT_PUBLIC_KEY if algorithm == "RS256" else settings.AUTH_JWT_SECRET
    if not key:
        setting = "AUTH_JWT_PUBLIC_KEY" if algorithm == "RS256" else "AUTH_JWT_SECRET"
        raise VerifierMisconfigured(f"{setting} is empty")
    return key


def _email_of(claims: dict[str, Any]) -> str:
    email = claims.get("email")
    if isinstance(email, str) and "@" in email and len(email) <= MAX_EMAIL_LENGTH and email.isprintable():
        return email
    # An unusable email is dropped rather than refusing the token: the email is optional.
    return ""


def _language_of(claims: dict[str, Any]) -> str:
    locale = str(claims.get("locale") or claims.get("lang") or "")
    return "ru" if locale.lower().startswith("ru") else "en"


def decode_token(token: str) -> TokenClaims:
    """Verify a token's signature, expiry and claims and return who it speaks for.

    Raises TokenError for a token that is refused, VerifierMisconfigured when no token can
    be verified with this service's settings.
    """
    key = _verification_key()
    try:
        claims = jwt.decode(
            token,
            key,
            # Exactly one algorithm: never let the token choose how it is verified.
            algorithms=[settings.AUTH_JWT_ALGORITHM],
            options={"require": REQUIRED_CLAIMS, "verify_aud": bool(settings.AUTH_JWT_AUDIENCE)},
            audience=settings.AUTH_JWT_AUDIENCE or None,
            issuer=settings.AUTH_JWT_ISSUER or None,
            leeway=settings.AUTH_JWT_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token_expired", "The token has expired.") from exc
    except jwt.InvalidKeyError as exc:
        # The configured key itself is unusable (e.g. a PEM that does not parse), whatever the token.
        raise VerifierMisconfigured(f"the token verification key is unusable: {exc}") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("token_invalid", f"The token is not valid: {exc}.") from exc
    user_id = claims["sub"]
    if not is_valid_user_id(user_id):
        raise TokenError("token_invalid", "The token's subject is not a valid user id.")
    return TokenClaims(
        user_id=user_id,
        email=_email_of(claims),
        language=_language_of(claims),
        expires_at=float(claims["exp"]),
    )


def issue_token(*, user_id: str, email: str = "", ttl_seconds: int = 3600, locale: str = "") -> str:
    """Return an HS256 token signed with this service's secret, as the auth service would."""
    if settings.AUTH_JWT_ALGORITHM != "HS256":
        raise TokenError(
            "unsupported_algorithm",
            "Tokens can be issued here only with HS256; RS256 tokens come from the auth service.",
        )
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    if email:
        claims["email"] = email
    if locale:
        claims["locale"] = locale
    if settings.AUTH_JWT_ISSUER:
        claims["iss"] = settings.AUTH_JWT_ISSUER
    if settings.AUTH_JWT_AUDIENCE:
        claims["aud"] = settings.AUTH_JWT_AUDIENCE
    return jwt.encode(claims, settings.AUTH_JWT_SECRET, algorithm="HS256")
