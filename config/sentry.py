"""Error tracking: the Sentry SDK, started by the settings when SENTRY_DSN is set.

Errors of the web processes (Django integration), of workers and beat (Celery integration) and
error-level log lines go to Sentry, tagged with the environment, the release and the current
request's or task's fields (core/log_context.py), so an error links to its log lines.

Nothing secret leaves with them: the SDK's default `send_default_pii=False` keeps cookies, users
and addresses out, and every error, transaction and breadcrumb passes through core.scrubbing on its way
(request data and headers, extra, contexts, stack frames' local variables, exception messages),
which removes keys, tokens, secrets, emails and card numbers wherever they stand.

Each beat job is a Sentry cron monitor named after its schedule entry (`enqueue-due-renewals`),
so a job that stops running or fails is reported. The SDK patches Celery's `Scheduler.apply_entry`,
which django-celery-beat's DatabaseScheduler inherits; Sentry Crons has no interval under a
minute, so the jobs that run every few seconds are left out (`unmonitored_beat_jobs`).
"""

import re
from collections.abc import Mapping
from typing import Any, cast

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.transport import Transport
from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

from core.log_context import log_context_fields
from core.scrubbing import scrub_data

# Celery's own daily job, which django-celery-beat installs: nobody needs to be paged for it.
CELERY_OWN_BEAT_JOBS = ("celery.backend_cleanup",)
SHORTEST_MONITORED_INTERVAL_SECONDS = 60


def scrub_event(event: Event, hint: Hint) -> Event:
    """Return the event (an error or a transaction) with nothing secret or personal in it.

    Tagged with the current request's or task's fields first, which are ids, not secrets.
    """
    tags = event.get("tags")
    event["tags"] = {**log_context_fields(), **(tags if isinstance(tags, dict) else {})}
    return cast(Event, scrub_data(event))


def scrub_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint) -> Breadcrumb:
    """Return a breadcrumb (a log line, a query, an HTTP call) scrubbed like the events."""
    return cast(Breadcrumb, scrub_data(crumb))


def unmonitored_beat_jobs(beat_schedule: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return patterns of the beat jobs Sentry Crons cannot watch: intervals under a minute or of part minutes.

    Without them the SDK would warn about each of these at every tick.
    """
    names = [
        name
        for name, entry in beat_schedule.items()
        if isinstance(entry.get("schedule"), int | float)
        and (
            entry["schedule"] < SHORTEST_MONITORED_INTERVAL_SECONDS
            or entry["schedule"] % SHORTEST_MONITORED_INTERVAL_SECONDS
        )
    ]
    return [f"^{re.escape(name)}$" for name in [*names, *CELERY_OWN_BEAT_JOBS]]


def sentry_init(
    *,
    dsn: str,
    environment: str,
    release: str | None,
    traces_sample_rate: float,
    beat_schedule: Mapping[str, Mapping[str, Any]],
    transport: Transport | None = None,
) -> None:
    """Start the Sentry SDK for this process (web, worker, beat); `transport` replaces the network in tests."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        # send_default_pii stays unset, which is False: no cookies, users or addresses. (2.75
        # deprecates setting it; `data_collection` replaces it and would turn the SDK's own
        # scrubber off, which stays on under ours.)
        traces_sample_rate=traces_sample_rate,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(
                monitor_beat_tasks=True,
                exclude_beat_tasks=unmonitored_beat_jobs(beat_schedule),
            ),
        ],
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        transport=transport,
    )
