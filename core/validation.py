"""Input validation shared by the API views."""

import uuid
from typing import Any

from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not know, instead of ignoring them.

    A client that sends an amount, or misspells a field, hears so rather than being
    silently misunderstood.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unexpected = sorted(set(data) - set(self.fields))
            if unexpected:
                raise serializers.ValidationError(
                    {name: ["This field is not accepted."] for name in unexpected}
                )
        return super().to_internal_value(data)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate request data with an input serializer and return the clean values.

    Anything but a JSON object is refused in the same field-error shape as other mistakes.
    """
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def uuid_or_none(value: str | None) -> uuid.UUID | None:
    """Return `value` as a UUID, or None when it is not one (a search term, an id a provider carried back)."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
