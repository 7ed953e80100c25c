"""Shared pieces of the OpenAPI description: the error shape and its examples."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from core.errors import DomainError, error_body

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


def domain_errors_response(status_code: int, description: str, *errors: type[DomainError]) -> OpenApiResponse:
    """Return an OpenAPI response in the error shape with one example per domain error."""
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[
            OpenApiExample(
                error.code,
                value=error_body(error.code, error.message),
                response_only=True,
                status_codes=[str(status_code)],
            )
            for error in errors
        ],
    )


UNAUTHENTICATED = error_response(
    "not_authenticated", "Authentication credentials were not provided.", "No valid token"
)
NOT_FOUND = error_response("not_found", "Not found.", "Unknown, or not the caller's")
VIEWER_ERRORS: dict[int, Any] = {401: UNAUTHENTICATED}


def _error_examples(description: str, errors: dict[str, str]) -> dict[str, Any]:
    """Return an OpenAPI response object in the error shape, one example per code."""
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "examples": {
                    code: {"value": {"error": {"code": code, "message": message, "details": {}}}}
                    for code, message in errors.items()
                },
            }
        },
    }


# Answers any operation may give, whatever its view: refused at the edge or by the parser
# (core/parsers.py, config/middleware.py), or while PostgreSQL is unreachable.
BAD_REQUEST = _error_examples(
    "The request cannot be read",
    {
        "parse_error": "The request body is not valid JSON.",
        "too_deeply_nested": "JSON may nest at most 32 levels deep.",
        "null_character": "The request may not contain the NUL character.",
        "number_out_of_range": "JSON numbers must be finite.",
        "validation_error": "The request has invalid fields.",
    },
)
SERVICE_UNAVAILABLE = _error_examples(
    "Temporarily unavailable (e.g. the database); retry after `Retry-After` seconds",
    {"service_unavailable": "The service is temporarily unavailable. Please retry shortly."},
)
PAGE_NOT_FOUND = _error_examples("No such page of the list", {"not_found": "Invalid page."})


def add_common_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document the error answers every operation may give, where its view does not already.

    A drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]).
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("400", BAD_REQUEST)
            responses.setdefault("503", SERVICE_UNAVAILABLE)
            if any(parameter.get("name") == "page" for parameter in operation.get("parameters", [])):
                responses.setdefault("404", PAGE_NOT_FOUND)
    return result
