"""Middleware at the edge of the service: what no request may bring in, and outages.

- `TrustedProxyMiddleware` removes forwarding headers that did not come from our proxy.
- `NulCharacterMiddleware` refuses the NUL character anywhere in the URL, headers or cookies.
- `DatabaseUnavailableMiddleware` answers 503 when PostgreSQL cannot be reached.
- `RequestIdMiddleware` gives each request the id its log lines and queued tasks carry.
"""

import ipaddress
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.errors import DATABASE_UNAVAILABLE, error_body, log_database_unavailable, service_unavailable
from core.log_context import log_context_end, log_context_start

logger = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Headers a reverse proxy sets, and Django (SECURE_PROXY_SSL_HEADER) or gunicorn would believe.
FORWARDING_HEADERS = (
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_SSL",
    "HTTP_X_FORWARDED_PROTOCOL",
    "HTTP_FORWARDED",
)


def proxy_network(entry: str) -> IPNetwork | None:
    """Return the network an entry of TRUSTED_PROXY_IPS names (an address or a CIDR), or None."""
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return None


def trusted_networks(entries: Iterable[str]) -> list[IPNetwork]:
    """Return the networks of TRUSTED_PROXY_IPS, skipping unreadable entries.

    An unreadable entry trusts nobody; the `billing.E009` system check names it.
    """
    return [network for network in map(proxy_network, entries) if network is not None]


def _address_in(address: str, networks: list[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        # A Unix socket peer, or nothing at all: no address to trust.
        return False
    return any(ip in network for network in networks)


class TrustedProxyMiddleware:
    """Strip X-Forwarded-* and Forwarded headers unless the peer is a trusted proxy.

    Production settings trust `X-Forwarded-Proto` to tell HTTPS (SECURE_PROXY_SSL_HEADER);
    without this, any client could claim HTTPS by sending it. It must run first, before
    SecurityMiddleware asks `request.is_secure()`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.networks = trusted_networks(settings.TRUSTED_PROXY_IPS)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _address_in(request.META.get("REMOTE_ADDR", ""), self.networks):
            for header in FORWARDING_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)


def _has_nul(request: HttpRequest) -> bool:
    texts = [request.path_info, unquote(request.META.get("QUERY_STRING", ""))]
    texts += [value for name, value in request.META.items() if name.startswith("HTTP_")]
    # A quoted cookie value may spell NUL as the octal escape \000, which parsing decodes.
    texts += [f"{name}={value}" for name, value in request.COOKIES.items()]
    return any("\x00" in text for text in texts)


class NulCharacterMiddleware:
    """Refuse a NUL character in the path, the query string, a header or a cookie with a 400.

    PostgreSQL cannot store NUL in text, and no valid input holds one: refusing it here
    keeps it from every view, form and query. JSON bodies are checked by the API's parser.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            message = "The request may not contain the NUL character."
            if request.path.startswith("/api/"):
                return JsonResponse(error_body("null_character", message), status=400)
            return HttpResponse(message, content_type="text/plain", status=400)
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """Answer 503 instead of 500 when a view fails because the database is unreachable.

    The API's exception handler does the same for DRF views; this covers admin and pages.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        log_database_unavailable(exception)
        return service_unavailable(request)


REQUEST_ID_HEADER = "X-Request-ID"
# What a caller's own id may look like: short, and nothing a log line or a header could misread.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_for(incoming: str | None) -> str:
    """Return the caller's X-Request-ID when it is short and safe to log, else a new id."""
    if incoming and SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give every request an id that each of its log lines, the tasks it queues and its answer carry.

    The cinema's gateway may send its own `X-Request-ID`, so one id follows a viewer's action
    across services; otherwise one is made here. The id stays in the log context
    (core/log_context.py) until the response is closed, so Django's own "Bad Request" and
    "Not Found" lines, written after the middleware returns, carry it too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
        log_context_start(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


@receiver(request_finished)
def end_request_log_context(**kwargs: Any) -> None:
    """Forget the finished request's id, so nothing logged between requests claims it."""
    log_context_end()
