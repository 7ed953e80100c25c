"""The errors a gateway raises, and what a decline means for the next attempt.

Every provider package maps its own failures onto these, so the domain decides retries,
dunning and what to tell the viewer without knowing which provider answered.
"""

from __future__ import annotations

from typing import Literal

# What a decline means for the next attempt, decided by the provider package from its own
# codes: a soft decline (insufficient funds, a generic refusal, the issuer unavailable) may
# pass later and is retried by dunning; a hard one (the card is gone, blocked, refused for
# good, or the saved method cannot be charged at all) never will.
DeclineKind = Literal["soft", "hard"]
# Why a payment failed, for what comes next: a decline of either kind, or the issuer asking
# for the customer to be present (3-D Secure).
PaymentDecline = DeclineKind | Literal["authentication_required"]
# What a decline means for the viewer, to tell them in our words; anything the provider does
# not say more precisely is "other".
DeclineReason = Literal["insufficient_funds", "card_expired", "card_blocked", "other"]


class GatewayError(Exception):
    """Base of every error a gateway raises; `retryable` says whether trying again may help."""

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.http_status = http_status
        self.request_id = request_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"retryable={self.retryable!r}, http_status={self.http_status!r})"
        )


class CardDeclined(GatewayError):
    """The card was refused; `decline_code` is the issuer's reason when the provider gives one.

    `kind` says whether retrying can help (`DeclineKind`); the provider package classifies it.
    """

    def __init__(
        self,
        message: str,
        *,
        decline_code: str | None = None,
        payment_intent_id: str | None = None,
        code: str | None = "card_declined",
        kind: DeclineKind = "soft",
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, retryable=False, http_status=http_status, request_id=request_id)
        self.decline_code = decline_code
        self.payment_intent_id = payment_intent_id
        self.kind: DeclineKind = kind


class AuthenticationRequired(GatewayError):
    """The issuer wants the customer present (3-D Secure): an off-session charge cannot finish."""

    def __init__(
        self,
        message: str,
        *,
        payment_intent_id: str | None = None,
        code: str | None = "authentication_required",
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, retryable=False, http_status=http_status, request_id=request_id)
        self.payment_intent_id = payment_intent_id


class RateLimited(GatewayError):
    """The provider asked us to slow down."""

    default_retryable = True


class TemporaryGatewayError(GatewayError):
    """Network trouble, a timeout, a 5xx or a lock timeout: the same call may succeed later."""

    default_retryable = True


class PermanentGatewayError(GatewayError):
    """The request itself is wrong (invalid, unauthorised, not found): retrying cannot help."""


class InvalidWebhookSignature(GatewayError):
    """A webhook body was not signed by the provider with our secret, or is too old."""
