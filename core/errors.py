"""Domain errors and the one JSON error shape every endpoint answers with.

`{"error": {"code": "...", "message": "...", "details": {...}}}`: `code` is stable and
machine-readable, `message` is for people, `details` carries field errors or context.
"""

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

logger = logging.getLogger(__name__)

# What the database driver raises when PostgreSQL cannot be reached or drops the connection
# (and for transient conflicts such as a deadlock): the request may succeed if retried.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
SERVICE_UNAVAILABLE_MESSAGE = "The service is temporarily unavailable. Please retry shortly."
RETRY_AFTER_SECONDS = "5"


class DomainError(Exception):
    """A business rule refused the request; maps to a 4xx answer with a stable code."""

    code: str = "domain_error"
    message: str = "The request cannot be carried out."
    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details = details or {}
        super().__init__(self.message)


class NotFound(DomainError):
    """The object does not exist, or is not the caller's: both answer the same, so ids reveal nothing."""

    code = "not_found"
    message = "Not found."
    status_code = status.HTTP_404_NOT_FOUND


class InvalidStatusTransition(DomainError):
    code = "invalid_status_transition"
    message = "The subscription cannot move to that status from its current one."
    status_code = status.HTTP_409_CONFLICT


class LiveSubscriptionExists(DomainError):
    code = "subscription_already_exists"
    message = "You already have a subscription that is active or awaiting payment."
    status_code = status.HTTP_409_CONFLICT


class TariffUnavailable(DomainError):
    code = "tariff_unavailable"
    message = "This tariff does not exist or can no longer be subscribed to."
    status_code = status.HTTP_400_BAD_REQUEST


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the JSON body of an error answer."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _code_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "validation_error"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _message_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "The request has invalid fields."
    detail = exc.detail
    return str(detail) if not isinstance(detail, list | dict) else str(exc.default_detail)


def _details_of(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        return detail if isinstance(detail, dict) else {"non_field_errors": detail}
    return {}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer every API error, ours or the framework's, in the one error shape."""
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DATABASE_UNAVAILABLE):
        log_database_unavailable(exc)
        set_rollback()
        return Response(
            error_body("service_unavailable", SERVICE_UNAVAILABLE_MESSAGE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = error_body(_code_of(exc), _message_of(exc), _details_of(exc))
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def log_database_unavailable(exc: BaseException) -> None:
    """Log a database outage once per request, as a warning: it is no bug of ours."""
    logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """Answer 503 while a backing service is down: JSON under /api/, plain text elsewhere."""
    response: HttpResponse
    if _is_api(request):
        response = JsonResponse(error_body("service_unavailable", SERVICE_UNAVAILABLE_MESSAGE), status=503)
    else:
        response = HttpResponse(SERVICE_UNAVAILABLE_MESSAGE, content_type="text/plain", status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer an unknown URL: JSON under /api/, Django's page elsewhere (admin, pages)."""
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception or Http404())


def json_server_error(request: HttpRequest) -> HttpResponse:
    """Answer an unexpected failure (the traceback is logged): JSON under /api/.

    A database outage that surfaced outside any view (in a middleware) is a 503, as in views.
    """
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return service_unavailable(request)
    if _is_api(request):
        return JsonResponse(
            error_body("internal_error", "Something went wrong on our side. Please retry."), status=500
        )
    return defaults.server_error(request)


def json_bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer a request Django itself rejected (e.g. a bad Host header): JSON under /api/."""
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return defaults.bad_request(request, exception or Exception())


def json_permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer a forbidden request outside DRF: JSON under /api/, a page for staff in admin."""
    if _is_api(request):
        return JsonResponse(error_body("permission_denied", "Permission denied."), status=403)
    return defaults.permission_denied(request, exception or DjangoPermissionDenied())


def json_csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Answer a request refused by the CSRF check: JSON under /api/, Django's page elsewhere.

    The API itself needs no CSRF token (it takes no cookies); only admin forms do.
    """
    if _is_api(request):
        return JsonResponse(
            error_body("csrf_failed", "The request was refused by the CSRF check.", {"reason": reason}),
            status=403,
        )
    return csrf.csrf_failure(request, reason)
