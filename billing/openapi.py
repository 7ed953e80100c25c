"""Shared pieces of the OpenAPI description: the error shape and its examples."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(help_text="Stable, machine-readable reason."),
                "message": serializers.CharField(help_text="Human-readable explanation."),
                "details": serializers.DictField(help_text="Field errors or context."),
            },
        )
    },
)


def error_response(code: str, message: str, description: str) -> OpenApiResponse:
    """Return an OpenAPI response in the error shape with one example."""
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[
            OpenApiExample(
                code,
                value={"error": {"code": code, "message": message, "details": {}}},
                response_only=True,
            )
        ],
    )


UNAUTHENTICATED = error_response(
    "not_authenticated", "Authentication credentials were not provided.", "No valid token"
)
NOT_FOUND = error_response("not_found", "Not found.", "Unknown, or not the caller's")
VIEWER_ERRORS: dict[int, Any] = {401: UNAUTHENTICATED}
