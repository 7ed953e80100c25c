"""Middleware at the edge of the service: what no request may bring in, and outages.

- `TrustedProxyMiddleware` removes forwarding headers that did not come from our proxy.
- `NulCharacterMiddleware` refuses the NUL character anywhere in the URL, headers or cookies.
- `DatabaseUnavailableMiddleware` answers 503 when PostgreSQL cannot be reached.
"""

import ipaddress
import logging
from collections.abc import Callable, Iterable
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.errors import DATABASE_UNAVAILABLE, error_body, log_database_unavailable, service_unavailable

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
