"""The service's Prometheus metrics: each defined once here, recorded with one call where it happens.

Every name starts with `billing_` and every label takes few values (a route's pattern, a
provider, an outcome), never an id, an email or a raw path: each label value is a time series
Prometheus keeps, so one per subscription would cost as much as the subscriptions themselves.
docs/operations.md says what each metric means and which alerts to set on it.

The figures that live in the database (backlogs, the last reconciliation and ledger check)
are not kept here: config/metrics.py reads them when /metrics is scraped.

Under gunicorn (and a prefork Celery worker) each process counts in its own files under
`PROMETHEUS_MULTIPROC_DIR`, and the scrape adds them up; prometheus_client picks that mode up
from the environment, so nothing here changes.
"""

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)
P = ParamSpec("P")
Outcome = TypeVar("Outcome", bound=str)

# The HTTP methods a label may name: anything else a client invents is counted as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# What the route label says of a request that matched no URL pattern (a 404, a refused host).
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "billing_http_requests",
    "HTTP requests answered, by URL pattern, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "billing_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PROVIDER_CALLS = Counter(
    "billing_provider_calls",
    "Requests sent to a payment provider (each retry counts), by how they ended.",
    ["provider", "operation", "outcome"],
)
PROVIDER_CALL_DURATION = Histogram(
    "billing_provider_call_duration_seconds",
    "Time a payment provider took to answer one request (the wait for the rate limit excluded).",
    ["provider", "operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RENEWALS = Counter(
    "billing_renewals",
    "Renewal runs of one subscription, by outcome (error: the run raised, e.g. the provider failed).",
    ["outcome"],
)
WEBHOOK_EVENTS_RECEIVED = Counter(
    "billing_webhook_events_received",
    "Provider events accepted for storing, by where they came from and whether they were stored already.",
    ["provider", "source", "duplicate"],
)
WEBHOOK_EVENTS_REJECTED = Counter(
    "billing_webhook_events_rejected",
    "Webhook bodies refused before storing: a bad signature, or signed but unreadable.",
    ["provider", "reason"],
)
WEBHOOK_EVENTS_HANDLED = Counter(
    "billing_webhook_events_handled",
    "Stored provider events a worker acted on, by outcome (processed, ignored, failed).",
    ["provider", "outcome"],
)
RATELIMIT_WAITS = Counter(
    "billing_ratelimit_waits",
    "Provider requests that waited for their turn under the outgoing rate limit.",
    ["provider"],
)
RATELIMIT_WAIT_SECONDS = Counter(
    "billing_ratelimit_wait_seconds",
    "Seconds provider requests spent waiting for their turn under the outgoing rate limit.",
    ["provider"],
)
RATELIMIT_REFUSALS = Counter(
    "billing_ratelimit_refusals",
    "Provider requests not sent because their turn was further off than a call may wait.",
    ["provider"],
)


_failed_recorders: set[str] = set()


def never_raises(record: Callable[P, None]) -> Callable[P, None]:
    """Make a recording function log instead of raising: a figure must never fail the work it counts.

    In multiprocess mode each count is a write to a memory-mapped file, which a full or missing
    directory can refuse; a renewal must go on all the same. Logged once per process and function.
    """

    @functools.wraps(record)
    def recording(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception:
            if record.__name__ not in _failed_recorders:
                _failed_recorders.add(record.__name__)
                logger.exception("metrics: %s failed; the work goes on uncounted", record.__name__)

    return recording


@never_raises
def record_http_request(*, route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request; `route` is its URL pattern, never the path itself."""
    method = method if method in HTTP_METHODS else "other"
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
    HTTP_REQUEST_DURATION.labels(route=route, method=method).observe(seconds)


@never_raises
def record_provider_call(*, provider: str, operation: str, outcome: str, seconds: float) -> None:
    """Count one request to a payment provider and how long its answer took."""
    PROVIDER_CALLS.labels(provider=provider, operation=operation, outcome=outcome).inc()
    PROVIDER_CALL_DURATION.labels(provider=provider, operation=operation).observe(seconds)


@never_raises
def record_renewal(outcome: str) -> None:
    """Count one renewal run by its outcome."""
    RENEWALS.labels(outcome=outcome).inc()


def counts_renewals(run: Callable[P, Outcome]) -> Callable[P, Outcome]:
    """Count every outcome `run` returns, and "error" for every exception it raises."""

    @functools.wraps(run)
    def counted(*args: P.args, **kwargs: P.kwargs) -> Outcome:
        try:
            outcome = run(*args, **kwargs)
        except Exception:
            record_renewal("error")
            raise
        record_renewal(str(outcome))
        return outcome

    return counted


@never_raises
def record_webhook_received(*, provider: str, source: str, duplicate: bool) -> None:
    """Count one provider event accepted for storing (a duplicate changes nothing)."""
    WEBHOOK_EVENTS_RECEIVED.labels(provider=provider, source=source, duplicate=str(duplicate).lower()).inc()


@never_raises
def record_webhook_rejected(*, provider: str, reason: str) -> None:
    """Count one webhook body refused before storing, by the error code it was answered with."""
    WEBHOOK_EVENTS_REJECTED.labels(provider=provider, reason=reason).inc()


@never_raises
def record_webhook_handled(*, provider: str, outcome: str) -> None:
    """Count one stored event a worker acted on, by the status it left the event in."""
    WEBHOOK_EVENTS_HANDLED.labels(provider=provider, outcome=outcome).inc()


@never_raises
def record_ratelimit_wait(*, provider: str, seconds: float) -> None:
    """Count one provider request that waited `seconds` for its turn."""
    RATELIMIT_WAITS.labels(provider=provider).inc()
    RATELIMIT_WAIT_SECONDS.labels(provider=provider).inc(seconds)


@never_raises
def record_ratelimit_refusal(*, provider: str) -> None:
    """Count one provider request refused by the outgoing rate limit."""
    RATELIMIT_REFUSALS.labels(provider=provider).inc()
