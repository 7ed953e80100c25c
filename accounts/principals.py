"""Who is calling: a viewer with the cinema's JWT, or another cinema service."""

import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from rest_framework import serializers

from accounts.models import BillingAccount

# A cinema user id is kept in BillingAccount.user_id, so it can be no longer than that column.
MAX_USER_ID_LENGTH: int = BillingAccount._meta.get_field("user_id").max_length or 128


def is_valid_user_id(value: object) -> bool:
    """Return whether `value` can be a cinema user id: text that fits the column, not blank.

    Control characters are refused: PostgreSQL cannot store NUL in text at all, and no
    cinema user id has any of them.
    """
    return (
        isinstance(value, str)
        and bool(value.strip())
        and len(value) <= MAX_USER_ID_LENGTH
        and not any(unicodedata.category(char) == "Cc" for char in value)
    )


@dataclass(frozen=True)
class Viewer:
    """A cinema user, as their verified token describes them."""

    user_id: str
    email: str = ""
    language: str = "en"
    is_authenticated = True

    @cached_property
    def account(self) -> BillingAccount:
        """Return the viewer's billing account, creating it on their first request."""
        from accounts.services import account_get_or_create

        return account_get_or_create(user_id=self.user_id, email=self.email, language=self.language)


@dataclass(frozen=True)
class InternalService:
    """Another cinema service holding one of the configured service keys."""

    is_authenticated = True


def validated_user_id(user_id: str) -> str:
    """Return a cinema user id taken from a URL, or refuse it in the field-error shape (400).

    The same rule as a token's `sub` (`is_valid_user_id`): no longer than the column, not
    blank, no control characters.
    """
    if not is_valid_user_id(user_id):
        raise serializers.ValidationError(
            {"user_id": [f"A user id is 1 to {MAX_USER_ID_LENGTH} characters, without control characters."]}
        )
    return user_id


def viewer_of(request: Any) -> Viewer:
    """Return the viewer a request was authenticated as (views guarded by IsViewer)."""
    user = request.user
    if not isinstance(user, Viewer):
        raise TypeError("this view must be guarded by the IsViewer permission")
    return user
