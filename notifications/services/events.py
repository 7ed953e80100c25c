"""Events to the cinema's services: a transactional outbox and a signed-webhook dispatcher.

- `event_publish` writes the event, and one delivery per subscribed endpoint, in the
  caller's transaction: a rolled-back change publishes nothing.
- A dispatcher (beat every few seconds, nudged after each commit) POSTs due deliveries,
  each under its row lock (`SELECT … FOR UPDATE SKIP LOCKED`), so concurrent dispatchers
  never send one delivery at the same time; it never sends event n+1 of a subscription to
  an endpoint before n is delivered there. A failed try is retried with exponential
  backoff, for as long as it takes: delivery is at least once.
- The nudge is only a shortcut: with the broker down at commit time it fails quietly and
  the next dispatcher run delivers the event.
- Each POST goes to an address checked just before it (notifications.services.endpoints),
  and support sees only its status or a one-line error, never what the receiver answered.
"""

import hashlib
import hmac
import http.client
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from accounts.models import BillingAccount
from billing.models import Subscription
from core import clock
from core.queueing import nudge
from notifications.models import (
    DeliveryStatus,
    EndpointSource,
    EventDelivery,
    EventEndpoint,
    OutboxEvent,
)
from notifications.payloads import iso
from notifications.selectors import deliveries_due, deliveries_sendable
from notifications.services.endpoints import (
    EndpointUrlRefused,
    endpoint_connection,
    endpoint_is_restricted,
    endpoint_target,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Billing-Signature"
EVENT_ID_HEADER = "Billing-Event-Id"
EVENT_TYPE_HEADER = "Billing-Event-Type"
USER_AGENT = "cinema-billing-events/1"
# Retries wait 5 s, 10 s, 20 s, … doubling up to an hour between tries, and never give up.
BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(hours=1)
# What one dispatcher run handles at most, so a run stays short and runs do not pile up.
DISPATCH_BATCH = 200
DISPATCH_BUDGET_SECONDS = 50


@dataclass(frozen=True)
class EndpointSpec:
    """An endpoint given by the environment (EVENT_ENDPOINTS)."""

    url: str
    secret: str
    event_types: tuple[str, ...]


def configured_endpoints() -> dict[str, EndpointSpec]:
    """Return the endpoints the environment configures, by URL."""
    specs: dict[str, EndpointSpec] = {}
    for spec in settings.EVENT_ENDPOINTS:
        url = str(spec["url"])
        specs[url] = EndpointSpec(
            url=url,
            secret=str(spec.get("secret") or settings.EVENT_SIGNING_SECRET),
            event_types=tuple(str(event_type) for event_type in spec.get("event_types") or ()),
        )
    return specs


def _endpoint_filter(configured: dict[str, EndpointSpec]) -> Q:
    """Match the endpoints that receive events now: active in admin, or still configured."""
    return Q(source=EndpointSource.ADMIN, active=True) | Q(
        source=EndpointSource.ENVIRONMENT, url__in=list(configured)
    )


def _wants(endpoint: EventEndpoint, event_type: str, configured: dict[str, EndpointSpec]) -> bool:
    if endpoint.source == EndpointSource.ENVIRONMENT:
        types = configured[endpoint.url].event_types
        return not types or event_type in types
    return endpoint.wants(event_type)


def endpoint_secret(endpoint: EventEndpoint) -> str:
    """Return the secret deliveries to this endpoint are signed with (the environment's for its endpoints)."""
    if endpoint.source == EndpointSource.ENVIRONMENT:
        spec = configured_endpoints().get(endpoint.url)
        return spec.secret if spec else ""
    return endpoint.secret


# Every event reads the endpoints that receive it and takes the next number of its subscription
# under the row's lock, and a renewal publishes twice: compiling these three reads through the
# ORM cost a renewal more than running them (docs/benchmarks.md), so they are written out.
# Table, column and constant names come from the code, never from input.
_ENDPOINTS_SQL = f"""
    SELECT id, source, url, event_types, active FROM {EventEndpoint._meta.db_table}
    WHERE (source = '{EndpointSource.ADMIN.value}' AND active)
       OR (source = '{EndpointSource.ENVIRONMENT.value}' AND url IN ({{urls}}))
    ORDER BY id
"""  # noqa: S608
_SUBSCRIPTION = f'"{Subscription._meta.db_table}"'
_SUBSCRIPTION_LOCK_SQL = (
    f"SELECT account.user_id FROM {_SUBSCRIPTION}"  # noqa: S608
    f" JOIN {BillingAccount._meta.db_table} AS account ON account.id = {_SUBSCRIPTION}.account_id"
    f" WHERE {_SUBSCRIPTION}.id = %s"
)
_LAST_SEQUENCE_SQL = f"SELECT MAX(sequence) FROM {OutboxEvent._meta.db_table} WHERE subscription_id = %s"  # noqa: S608


def _endpoint_rows(configured: dict[str, EndpointSpec]) -> list[EventEndpoint]:
    """Return the endpoints that receive events now: active in admin, or still configured.

    The rule `_endpoint_filter` gives the ORM's queries, written out (the two must agree).
    """
    urls = list(configured)
    # `url IN ()` is not SQL: with nothing configured, ask for a URL no endpoint has.
    placeholders = ", ".join(["%s"] * len(urls)) or "NULL"
    return list(EventEndpoint.objects.raw(_ENDPOINTS_SQL.format(urls=placeholders), urls))


def _receiving_endpoints(event_type: str) -> list[EventEndpoint]:
    configured = configured_endpoints()
    # One query in the usual case: the receiving endpoints include every environment
    # endpoint that already has its row, so only a newly configured one needs a second look.
    endpoints = _endpoint_rows(configured)
    known = {endpoint.url for endpoint in endpoints if endpoint.source == EndpointSource.ENVIRONMENT}
    if missing := [url for url in configured if url not in known]:
        # First event since the endpoint was configured: give it a row (insert-or-ignore, so
        # concurrent publishers never fail the caller's transaction on the unique URL).
        EventEndpoint.objects.bulk_create(
            [EventEndpoint(url=url, source=EndpointSource.ENVIRONMENT, secret="") for url in missing],
            ignore_conflicts=True,
        )
        endpoints = _endpoint_rows(configured)
    return [endpoint for endpoint in endpoints if _wants(endpoint, event_type, configured)]


def _next_number(subscription: Subscription) -> tuple[str, int]:
    """Lock a subscription's row; return its viewer's user id and the number of its next event.

    The subscription's row only (its account's user id read along, never locked: the account
    comes first in the lock order).
    """
    connection = transaction.get_connection()
    lock = _SUBSCRIPTION_LOCK_SQL
    if connection.features.has_select_for_update_of:  # not SQLite (`make run`), which locks the whole file
        lock += f" FOR UPDATE OF {_SUBSCRIPTION}"
    subscription_id = Subscription._meta.pk.get_db_prep_value(subscription.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(lock, [subscription_id])
        (user_id,) = cursor.fetchone()
        # Read after the lock, in a statement of its own: a publisher that waited for the lock
        # sees the event its predecessor wrote.
        cursor.execute(_LAST_SEQUENCE_SQL, [subscription_id])
        (last,) = cursor.fetchone()
    return user_id, (last or 0) + 1


def event_publish(*, type: str, subscription: Subscription, payload: dict[str, Any]) -> OutboxEvent:
    """Record an event about a subscription in the caller's transaction, for every endpoint that wants it.

    The sequence number is the subscription's next one, taken under its row lock (already
    held by the callers that change the subscription, taken here otherwise), so numbers
    follow the order of the changes with no gap and no repeat.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_publish must run inside the transaction of the change it describes")
    user_id, sequence = _next_number(subscription)
    event = OutboxEvent.objects.create(
        type=type,
        subscription_id=subscription.pk,
        user_id=user_id,
        sequence=sequence,
        payload=payload,
        occurred_at=clock.now(),
    )
    now = clock.now()
    EventDelivery.objects.bulk_create(
        [
            EventDelivery(
                event=event,
                endpoint=endpoint,
                subscription_id=subscription.pk,
                sequence=event.sequence,
                next_attempt_at=now,
            )
            for endpoint in _receiving_endpoints(type)
        ]
    )
    transaction.on_commit(_nudge_dispatcher, robust=True)
    return event


def _nudge_dispatcher() -> None:
    """Ask a worker to deliver now; with the broker down, the beat-driven run will instead."""
    from notifications.tasks import dispatch_events

    nudge(dispatch_events)


def event_envelope(event: OutboxEvent) -> dict[str, Any]:
    """Return the JSON document POSTed for an event."""
    return {
        "id": str(event.pk),
        "type": event.type,
        "created": iso(event.occurred_at),
        "subscription_id": str(event.subscription_id),
        "user_id": event.user_id,
        "sequence": event.sequence,
        "data": event.payload,
    }


def event_body(event: OutboxEvent) -> bytes:
    """Return the exact bytes POSTed (and signed) for an event: the same on every try."""
    return json.dumps(
        event_envelope(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    """Return the Billing-Signature value: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    # What support reads in admin: the status, or why nothing was sent or answered; never
    # the receiver's body (an endpoint must not be a way to read what a URL answers).
    error: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _post(endpoint: EventEndpoint, body: bytes, headers: dict[str, str]) -> PostResult:
    """POST one delivery to an endpoint's checked address; a redirect is not followed (nor a delivery)."""
    try:
        target = endpoint_target(url=endpoint.url, restricted=endpoint_is_restricted(endpoint))
    except EndpointUrlRefused as exc:
        return PostResult(None, "not sent: " + _one_line(exc.message % exc.details))
    connection = endpoint_connection(target, timeout=settings.EVENT_DELIVERY_TIMEOUT_SECONDS)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return PostResult(None, _one_line(f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()
    return PostResult(status, "" if 200 <= status < 300 else f"HTTP {status}")


def _one_line(text: str, limit: int = 200) -> str:
    """Return an error as one short line of printable text."""
    return "".join(char if char.isprintable() else " " for char in text)[:limit]


def backoff(attempts: int) -> timedelta:
    """Return the wait after the `attempts`-th failed try: doubling from BACKOFF_FIRST up to BACKOFF_MAX."""
    return min(BACKOFF_FIRST * 2 ** min(attempts - 1, 30), BACKOFF_MAX)


def receiving_endpoints() -> QuerySet[EventEndpoint]:
    """Return the endpoints events are sent to now: active in admin, or still in the environment."""
    return EventEndpoint.objects.filter(_endpoint_filter(configured_endpoints()))


def delivery_attempt(*, delivery_id: int, now: datetime) -> PostResult | None:
    """POST one due delivery once, unless another worker holds it or an earlier event must go first.

    Returns None when nothing was tried. The row stays locked during the POST, so no other
    dispatcher sends it meanwhile; the event after it waits until this one is delivered.
    """
    with transaction.atomic():
        delivery = (
            deliveries_sendable(now=now, endpoints=receiving_endpoints())
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        body = event_body(delivery.event)
        # The signature's timestamp is the real time, not the billing clock: receivers check
        # it against their own clocks to refuse replays.
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: str(delivery.event_id),
            EVENT_TYPE_HEADER: delivery.event.type,
            SIGNATURE_HEADER: signature_header(
                secret=endpoint_secret(delivery.endpoint), body=body, timestamp=int(time.time())
            ),
        }
        result = _post(delivery.endpoint, body, headers)
        delivery.attempts += 1
        delivery.last_attempt_at = clock.now()
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error[:2000]
        if result.delivered:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = delivery.last_attempt_at
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            logger.info(
                "delivery %s of %s to %s failed (try %d): %s",
                delivery.pk,
                delivery.event.type,
                delivery.endpoint.url,
                delivery.attempts,
                result.error,
            )
        delivery.save()
    return result


def deliveries_dispatch(*, now: datetime | None = None) -> int:
    """Try every delivery that is due, oldest event first; return how many were delivered.

    Rounds repeat while they deliver something, since delivering event n frees n+1 of the
    same subscription; the run stops when a round delivers nothing or time is up.
    """
    started = time.monotonic()
    delivered = 0
    while time.monotonic() - started < DISPATCH_BUDGET_SECONDS:
        due = deliveries_due(now=now or clock.now(), endpoints=receiving_endpoints(), limit=DISPATCH_BATCH)
        delivered_in_round = 0
        for delivery_id in due:
            result = delivery_attempt(delivery_id=delivery_id, now=now or clock.now())
            delivered_in_round += bool(result and result.delivered)
            if time.monotonic() - started > DISPATCH_BUDGET_SECONDS:
                break
        delivered += delivered_in_round
        if not delivered_in_round:
            break
    return delivered


def delivery_redeliver(*, delivery: EventDelivery) -> None:
    """Send a delivery again now, delivered or not (support's action in admin)."""
    EventDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=clock.now()
    )
    transaction.on_commit(_nudge_dispatcher, robust=True)
