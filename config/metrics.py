"""/metrics for Prometheus: what this service's processes counted, and the backlogs read now.

- `metrics_view` answers the scrape: with `METRICS_TOKEN` set only a request carrying
  `Authorization: Bearer <token>` is answered, any other gets the API's JSON 401.
- `HttpMetricsMiddleware` counts every request by its URL pattern, method and status.
- `process_registry()` holds what the processes counted (core/metrics.py): with
  `PROMETHEUS_MULTIPROC_DIR` set (gunicorn, config/gunicorn.conf.py, and a prefork Celery
  worker) each process writes its figures to files there and a scrape adds them up, so
  whichever worker answers the scrape, the counts are the whole server's.

docs/operations.md lists the metrics and the alerts to set on them.
"""

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import ResolverMatch
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from config.metrics_backlog import BacklogCollector
from core.errors import error_body
from core.metrics import UNMATCHED_ROUTE, record_http_request

logger = logging.getLogger(__name__)

# The URL name of the scrape endpoint (config/urls.py): the scrapes themselves are not counted.
METRICS_URL_NAME = "metrics"
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="metrics"'}

_warned_open = False


class _ThisProcess:
    """What this process counted: prometheus_client's default registry, as one collector."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def process_registry() -> CollectorRegistry:
    """Return a registry of what the processes of this server counted.

    With `PROMETHEUS_MULTIPROC_DIR` set, the figures of every process that wrote there (the
    living and the dead: a counter must not go back when a worker is replaced); without it,
    this process's own, with its CPU and memory.
    """
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    return registry


def bearer_token_matches(authorization: str, token: str) -> bool:
    """Return whether an Authorization header carries `token` as a bearer token (constant time)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """Return the 401 for a scrape without the configured token, or None to answer it."""
    token = settings.METRICS_TOKEN
    if not token:
        _warn_once_if_open_in_production()
        return None
    authorization = request.headers.get("Authorization", "")
    if bearer_token_matches(authorization, token):
        return None
    return JsonResponse(refusal_body(authorization), status=401, headers=UNAUTHORIZED_HEADERS)


def refusal_body(authorization: str) -> dict[str, Any]:
    """Return the API's error body for a scrape whose Authorization header does not carry the token."""
    if authorization:
        return error_body("authentication_failed", "The metrics token is not right.")
    return error_body("not_authenticated", "Send the metrics token as `Authorization: Bearer <token>`.")


def _warn_once_if_open_in_production() -> None:
    global _warned_open
    if settings.BILLING_PRODUCTION and not _warned_open:
        _warned_open = True
        logger.warning(
            "METRICS_TOKEN is empty: /metrics answers anyone who can reach it; "
            "set it, or keep /metrics off the public network"
        )


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Answer Prometheus's scrape: the processes' counters and the backlogs as they are now."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    registry = process_registry()
    registry.register(BacklogCollector())
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(registry), content_type=content_type)


def route_of(match: ResolverMatch | None) -> str:
    """Return the label of a request's route: its URL pattern, never the path it was sent to.

    A `path()` pattern reads as the path it matches ("/api/v1/subscriptions/<uuid:subscription_id>/");
    a `re_path()` one stays the regular expression it is ("^api/", the API's catch-all).
    """
    if match is None:
        return UNMATCHED_ROUTE
    return match.route if match.route.startswith("^") else "/" + match.route


class HttpMetricsMiddleware:
    """Count each HTTP request and time its answer, by URL pattern, method and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match  # set once the URL resolved; None for a 404 or a refused host
        if match is None or match.url_name != METRICS_URL_NAME:
            record_http_request(
                route=route_of(match),
                method=request.method or "",
                status=response.status_code,
                seconds=time.perf_counter() - started,
            )
        return response
