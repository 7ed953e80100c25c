"""The gauges read when /metrics is scraped: what waits in the database and the broker.

Counters are kept by the processes that do the work (core/metrics.py); a backlog is a fact of
the database, the same whichever process is asked, so it is read at scrape time, by the web
processes only. Each figure is one query on an index (docs/operations.md lists them), and a
figure that cannot be read (the database or the broker is down) is left out of the scrape,
not allowed to fail it: the HTTP counters are most needed exactly then.
"""

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.db.models import Count, Min, QuerySet
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from billing.models import Subscription, SubscriptionStatus
from core import clock
from ledger.models import LedgerCheckRun
from notifications.models import DeliveryStatus, EventDelivery, Notice, NoticeStatus
from payments.gateways import configured_providers
from payments.models import (
    ReconciliationKind,
    ReconciliationRun,
    ReconciliationRunStatus,
    WebhookEvent,
    WebhookEventStatus,
)

logger = logging.getLogger(__name__)

# Stored events no worker has finished with: waiting for one, or failed and waiting for a retry.
UNFINISHED_EVENT_STATUSES = (WebhookEventStatus.RECEIVED, WebhookEventStatus.FAILED)
# Runs that say something about the provider (a skipped run found another one in progress).
FINISHED_RUN_STATUSES = (ReconciliationRunStatus.OK, ReconciliationRunStatus.FAILED)
REDIS_TIMEOUT_SECONDS = 1.0


class BacklogCollector:
    """Read the backlogs, the last checks and the broker's queues, once per scrape."""

    def collect(self) -> Iterator[Metric]:
        """Return the gauges, leaving out any group that cannot be read now."""
        for group in (
            renewal_backlog,
            webhook_backlog,
            outbox_backlog,
            notice_backlog,
            reconciliation_results,
            ledger_check_result,
            celery_queue_lengths,
        ):
            yield from _read_quietly(group)


def _read_quietly(group: Callable[[], Iterable[Metric]]) -> list[Metric]:
    try:
        return list(group())
    except Exception:
        logger.warning("metrics: could not read %s", group.__name__, exc_info=True)
        return []


def _age_seconds(oldest: datetime | None) -> float:
    """Return how long ago `oldest` was on the billing clock (0 when there is none)."""
    if oldest is None:
        return 0.0
    return max((clock.now() - oldest).total_seconds(), 0.0)


def renewal_backlog() -> list[Metric]:
    """Return the subscriptions whose renewal (or dunning retry) is due and not run yet, and the oldest's wait.

    The same rows as `payments.services.renewals.renewals_due` (a test holds them equal), split
    by what they wait for: the end of the paid period, or the next try after a decline.
    """
    now = clock.now()
    renewing = Subscription.objects.filter(
        status__in=(SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING),
        autopay=True,
        cancel_at_period_end=False,
        current_period_end__lte=now,
    ).aggregate(subscriptions=Count("pk"), oldest=Min("current_period_end"))
    retrying = Subscription.objects.filter(
        status=SubscriptionStatus.PAST_DUE, next_renewal_attempt_at__lte=now
    ).aggregate(subscriptions=Count("pk"), oldest=Min("next_renewal_attempt_at"))
    count = GaugeMetricFamily(
        "billing_renewals_due",
        "Subscriptions due for a renewal (period over) or a dunning retry (retry time come) not run yet.",
        labels=["kind"],
    )
    age = GaugeMetricFamily(
        "billing_renewals_due_oldest_age_seconds",
        "How long the longest-waiting of them has been due (0 when there is none).",
        labels=["kind"],
    )
    for kind, due in (("renewal", renewing), ("retry", retrying)):
        count.add_metric([kind], due["subscriptions"])
        age.add_metric([kind], _age_seconds(due["oldest"]))
    return [count, age]


def webhook_backlog() -> list[Metric]:
    """Return the stored provider events not yet processed, and the age of the oldest, by status."""
    count = GaugeMetricFamily(
        "billing_webhook_backlog_events",
        "Stored provider events not processed yet: received (waiting for a worker) or failed (waiting for a retry).",
        labels=["provider", "status"],
    )
    age = GaugeMetricFamily(
        "billing_webhook_backlog_oldest_age_seconds",
        "Age of the oldest stored provider event in that status (0 when there is none).",
        labels=["provider", "status"],
    )
    rows = {
        (row["provider"], row["status"]): row
        for row in WebhookEvent.objects.filter(status__in=UNFINISHED_EVENT_STATUSES)
        .values("provider", "status")
        .annotate(events=Count("pk"), oldest=Min("received_at"))
        .order_by()
    }
    providers = sorted(set(configured_providers()) | {provider for provider, _ in rows})
    for provider in providers:
        for status in UNFINISHED_EVENT_STATUSES:
            row = rows.get((provider, status), {})
            count.add_metric([provider, status], row.get("events", 0))
            age.add_metric([provider, status], _age_seconds(row.get("oldest")))
    return [count, age]


def _pending_backlog(pending: QuerySet[Any], *, count: tuple[str, str], age: tuple[str, str]) -> list[Metric]:
    """Return how many rows wait in `pending` and the age of the oldest, as two (name, help) gauges."""
    figures = pending.aggregate(rows=Count("pk"), oldest=Min("created_at"))
    return [
        GaugeMetricFamily(*count, value=figures["rows"]),
        GaugeMetricFamily(*age, value=_age_seconds(figures["oldest"])),
    ]


def outbox_backlog() -> list[Metric]:
    """Return the events not yet delivered to the cinema's services, and the age of the oldest."""
    return _pending_backlog(
        EventDelivery.objects.filter(status=DeliveryStatus.PENDING),
        count=(
            "billing_outbox_pending_deliveries",
            "Signed events to the cinema's services not delivered yet (one per event and endpoint).",
        ),
        age=(
            "billing_outbox_oldest_pending_age_seconds",
            "Age of the oldest event delivery still pending (0 when there is none).",
        ),
    )


def notice_backlog() -> list[Metric]:
    """Return the emails to viewers not yet sent, and the age of the oldest."""
    return _pending_backlog(
        Notice.objects.filter(status=NoticeStatus.PENDING),
        count=(
            "billing_notices_pending",
            "Emails to viewers recorded and not sent yet (waiting or between tries).",
        ),
        age=(
            "billing_notices_oldest_pending_age_seconds",
            "Age of the oldest email still waiting to be sent (0 when there is none).",
        ),
    )


def reconciliation_results() -> list[Metric]:
    """Return what the last finished run of each reconciliation job found, per provider."""
    mismatches = GaugeMetricFamily(
        "billing_reconciliation_mismatches",
        "What the last finished reconciliation run found differing from the provider (and put right).",
        labels=["provider", "kind"],
    )
    failed = GaugeMetricFamily(
        "billing_reconciliation_last_run_failed",
        "1 when the last finished reconciliation run failed, 0 when it finished ok.",
        labels=["provider", "kind"],
    )
    age = GaugeMetricFamily(
        "billing_reconciliation_last_run_age_seconds",
        "Time since the last finished reconciliation run started.",
        labels=["provider", "kind"],
    )
    for provider in sorted(configured_providers()):
        for kind in ReconciliationKind:
            run = (
                ReconciliationRun.objects.filter(
                    kind=kind, provider=provider, status__in=FINISHED_RUN_STATUSES
                )
                .order_by("-started_at")
                .values("status", "fixed", "started_at")
                .first()
            )
            if run is None:
                continue
            labels = [provider, kind.value]
            mismatches.add_metric(labels, run["fixed"])
            failed.add_metric(labels, int(run["status"] == ReconciliationRunStatus.FAILED))
            age.add_metric(labels, _age_seconds(run["started_at"]))
    return [mismatches, failed, age]


def ledger_check_result() -> list[Metric]:
    """Return what the last ledger check found (nothing before the first check)."""
    check = (
        LedgerCheckRun.objects.order_by("-checked_at")
        .values("checked_at", "mismatch_count", "unbalanced_entries")
        .first()
    )
    if check is None:
        return []
    return [
        GaugeMetricFamily(
            "billing_ledger_check_mismatches",
            "Disagreements the last ledger check found between the books and payments and refunds.",
            value=check["mismatch_count"],
        ),
        GaugeMetricFamily(
            "billing_ledger_check_unbalanced_entries",
            "Journal entries the last ledger check found not summing to zero.",
            value=check["unbalanced_entries"],
        ),
        GaugeMetricFamily(
            "billing_ledger_check_age_seconds",
            "Time since the last ledger check.",
            value=_age_seconds(check["checked_at"]),
        ),
    ]


def celery_queue_lengths() -> list[Metric]:
    """Return the messages waiting in each Celery queue, when the broker is Redis (else nothing)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return []  # the file broker of `make run` has no queue to measure cheaply
    from config.celery import app

    prefix = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", ""))
    queues = sorted(app.amqp.queues)
    client = _redis_client(url)
    with client.pipeline(transaction=False) as pipeline:
        for queue in queues:
            for key in _redis_queue_keys(prefix + queue):
                pipeline.llen(key)
        lengths = pipeline.execute()
    gauge = GaugeMetricFamily(
        "billing_celery_queue_length",
        "Tasks waiting in a Celery queue of the Redis broker (not yet taken by a worker).",
        labels=["queue"],
    )
    per_queue = len(PRIORITY_STEPS)
    for index, queue in enumerate(queues):
        gauge.add_metric([queue], sum(lengths[index * per_queue : (index + 1) * per_queue]))
    return [gauge]


def _redis_queue_keys(queue: str) -> list[str]:
    """Return the Redis lists of one queue: kombu keeps each priority step in a list of its own."""
    return [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]


@functools.lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    # One client (and connection pool) per broker URL for the life of the process.
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
