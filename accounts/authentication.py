"""DRF authentication for viewers (the cinema's JWT) and internal services (a shared key).

Neither touches the database: the access endpoint must stay at one query per request.
"""

import hmac
import logging

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.principals import InternalService, Viewer
from accounts.token_cache import VerificationConfig, verified_tokens
from accounts.tokens import TokenClaims, TokenError, VerifierMisconfigured, decode_token

logger = logging.getLogger(__name__)
SERVICE_KEY_HEADER = "HTTP_X_SERVICE_KEY"


class AuthenticationUnavailable(exceptions.APIException):
    """No token can be verified until an operator fixes the settings: not the caller's fault."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Signing in is unavailable right now. Please retry later."
    default_code = "authentication_unavailable"


class ViewerJWTAuthentication(BaseAuthentication):
    """Authenticate `Authorization: Bearer <jwt>` issued by the cinema's auth service."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Viewer, str] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword or len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the token as 'Authorization: Bearer <token>'.", code="token_malformed"
            )
        try:
            token = header[1].decode("ascii")
            claims = verified_claims(token)
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token is not valid.", code="token_invalid") from exc
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc), code=exc.code) from exc
        except VerifierMisconfigured as exc:
            # Loud for operators (`manage.py check --deploy` names the setting), quiet for callers.
            logger.error("cannot verify viewer tokens: %s", exc)
            raise AuthenticationUnavailable() from exc
        viewer = Viewer(user_id=claims.user_id, email=claims.email, language=claims.language)
        return viewer, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="billing"'


def _verification_config() -> VerificationConfig:
    return (
        settings.AUTH_JWT_ALGORITHM,
        settings.AUTH_JWT_SECRET,
        settings.AUTH_JWT_PUBLIC_KEY,
        settings.AUTH_JWT_ISSUER,
        settings.AUTH_JWT_AUDIENCE,
    )


def verified_claims(token: str) -> TokenClaims:
    """Return a token's claims, verifying it unless this process verified it before and it has not expired.

    A polling frontend sends the same token again and again; accounts/token_cache.py says
    what is kept and for how long. Anything refused is refused again in full every time.
    """
    config = _verification_config()
    claims = verified_tokens.get(token, config)
    if claims is None:
        claims = decode_token(token)  # raises TokenError for anything it refuses
        verified_tokens.put(token, config, claims=claims, expires_at=claims.expires_at)
    return claims


def service_key_is_valid(presented: str, keys: list[str]) -> bool:
    """Compare a presented key with every configured key in constant time."""
    presented_bytes = presented.encode()
    matched = False
    for key in keys:
        # No early exit: the time taken does not tell which key, or how much of one, matched.
        matched |= hmac.compare_digest(presented_bytes, key.encode())
    return matched


class ServiceKeyAuthentication(BaseAuthentication):
    """Authenticate another cinema service by its `X-Service-Key` header."""

    def authenticate(self, request: Request) -> tuple[InternalService, None] | None:
        presented = request.META.get(SERVICE_KEY_HEADER)
        if presented is None:
            return None
        if not service_key_is_valid(presented, settings.BILLING_SERVICE_KEYS):
            raise exceptions.AuthenticationFailed("The service key is not valid.", code="service_key_invalid")
        return InternalService(), None

    def authenticate_header(self, request: Request) -> str:
        return "X-Service-Key"
