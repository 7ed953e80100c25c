"""Tokens this process has already verified, so that a polling frontend is not re-verified each time.

A frontend sends the same JWT with every poll until it expires. Verifying it (PyJWT's HS256 check,
or RSA for RS256) is most of what authentication costs, so the claims of a token that passed
are kept, keyed by the exact token string and by the configuration it was verified under (the
algorithm, the key, the issuer and the audience: rotating the secret or the key lets no kept
token through). A kept token is trusted only until its `exp`, judged against the current time
on every hit and without the leeway, after which it goes through full verification again, and
is refused there once the leeway has passed as well. Refused tokens are never kept.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from accounts.tokens import TokenClaims

MAX_TOKENS = 10_000

# The algorithm, the HS256 secret, the RS256 public key, the issuer and the audience.
VerificationConfig = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class _Verified:
    claims: TokenClaims
    expires_at: float


class VerifiedTokens:
    """A bounded, thread-safe map from token to its verified claims, valid until `exp`."""

    def __init__(self, *, max_tokens: int = MAX_TOKENS, clock: Callable[[], float] = time.time):
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, VerificationConfig], _Verified] = {}
        self._max_tokens = max_tokens
        self._clock = clock

    def get(self, token: str, config: VerificationConfig) -> TokenClaims | None:
        """Return the claims of a token verified before under `config` and not expired since."""
        verified = self._tokens.get((token, config))
        if verified is None:
            return None
        if self._clock() >= verified.expires_at:
            with self._lock:
                self._tokens.pop((token, config), None)
            return None
        return verified.claims

    def put(self, token: str, config: VerificationConfig, *, claims: TokenClaims, expires_at: float) -> None:
        """Keep the claims of a token that has just passed verification."""
        with self._lock:
            while len(self._tokens) >= self._max_tokens:
                # The oldest goes first: dictionaries keep insertion order.
                del self._tokens[next(iter(self._tokens))]
            self._tokens[(token, config)] = _Verified(claims=claims, expires_at=expires_at)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def __len__(self) -> int:
        return len(self._tokens)


verified_tokens = VerifiedTokens()
