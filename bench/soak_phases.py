"""The phases of bench/soak: periods of renewals under faults, the settling after, the checks.

`soak_under_faults` runs them against a deployment bench/soak.py has started: for each period
it moves the billing clock past every period end and waits until the renewals, viewers and
refunds are done; then it stops the faults, lets the service finish, reconciles until nothing
changes, and hands over to bench/soak_findings.py. Where the soak does beat's work itself (to
compress a month into minutes), each function says so and why.
"""

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench.soak_findings import findings_record
from bench.soak_report import SoakReport

if TYPE_CHECKING:
    from bench.soak import Deployment, Options
    from bench.soak_subscribe import SandboxControl
    from bench.soak_traffic import Traffic

CELERY_QUEUE = "celery"
POLL_SECONDS = 0.5
PROGRESS_SECONDS = 15
# With renewals due and none done for this long, the soak queues them itself (`_queue_due_renewals`).
STALL_RESCUE_SECONDS = 15
# With nothing done for this long, something is broken: the period is reported unfinished.
STALL_FAIL_SECONDS = 300
REDIS_DOWN_SECONDS = 2.0


def soak_under_faults(
    options: "Options",
    deployment: "Deployment",
    base_url: str,
    control: "SandboxControl",
    seeded: dict[Any, datetime],
) -> SoakReport:
    """Run the periods under faults, let the service settle, check the rules; return the report."""
    from bench.soak_traffic import Traffic, WorkerKiller, fault_kind, fault_rules

    assert deployment.sandbox is not None and deployment.crew is not None
    sandbox, crew = deployment.sandbox, deployment.crew
    report = SoakReport(subscriptions=options.subscriptions, periods=options.periods)
    rules = [sandbox.post("/faults", rule) for rule in fault_rules(options.fault_rate)]
    traffic = Traffic(
        base_url=base_url,
        sandbox=control,
        paying_user_ids=[f"bench-viewer-{number}" for number in range(options.subscriptions)],
        tariff="monthly",
        pollers=options.pollers,
        polls_per_second=options.polls_per_second,
        threads=8,
        seed=options.seed,
    )
    killer = WorkerKiller(crew, every=options.kill_every, limit=options.kills, seed=options.seed)
    print(
        f"Faults on: {options.fault_rate:.0%} errors, {options.fault_rate:.0%} time-outs, "
        f"{options.fault_rate:.0%} lost answers; a worker killed every {options.kill_every:g}s."
    )
    started = time.monotonic()
    try:
        for period in range(options.periods):
            _period(options, deployment, traffic, report, period)
    finally:
        killer.stop()
        report.unfinished += traffic.stop()
    report.seconds["periods under faults"] = time.monotonic() - started
    hits = {rule["id"]: rule["hits"] for rule in sandbox.get("/faults")["data"]}
    report.faults = {fault_kind(rule): hits.get(rule["id"], 0) for rule in rules}
    sandbox.delete("/faults")
    report.workers_killed = crew.kills
    report.redis_restarts = deployment.redis.restarts if deployment.redis else 0
    print(f"Faults off after {report.seconds['periods under faults']:.0f}s: {report.faults}.")

    started = time.monotonic()
    _drain(deployment, report)
    report.seconds["settling"] = time.monotonic() - started
    started = time.monotonic()
    findings_record(options, deployment, traffic, control, seeded, report)
    report.seconds["checks"] = time.monotonic() - started
    return report


def _due_count() -> int:
    """Return how many subscriptions are due for a renewal (or a dunning retry) now."""
    from core import clock
    from payments.services.renewals import renewals_due

    return len(renewals_due(now=clock.now(), limit=10**9))


def _queued() -> str:
    """Return how many tasks wait in the workers' queue (what is running or held is not counted)."""
    import redis
    from django.conf import settings

    try:
        return str(redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(CELERY_QUEUE))
    except redis.RedisError:
        return "?"


def _move_clock_past_period_ends() -> int:
    """Move the billing clock just past every live subscription's period end; return how many are due."""
    from django.db.models import Max

    from billing.models import LIVE_STATUSES, Subscription
    from core import clock

    latest = Subscription.objects.filter(status__in=LIVE_STATUSES).aggregate(latest=Max("current_period_end"))
    if latest["latest"] is not None and latest["latest"] >= clock.now():
        clock.advance(latest["latest"] - clock.now() + timedelta(minutes=1))
    return _due_count()


def _queue_due_renewals() -> int:
    """Run beat's renewal job from this process now; return how many renewals it queued.

    At the start of a period it stands for beat's next run (within a minute). After a stall it
    stands for the run that would queue again a renewal task lost with a killed worker (its
    message waits out Redis's visibility timeout, an hour) or with the Redis restart: beat's job
    does so only once the "already queued" mark, kept 10 minutes in the memory of the worker
    that queued it, lapses (billing/tasks.py), minutes the soak does not wait. This process's
    own marks are forgotten first, for the same reason.
    """
    from django.core.cache import cache

    from billing.tasks import enqueue_due_renewals

    cache.clear()
    return enqueue_due_renewals()


class _RenewalWatch:
    """Count the renewals still due, queueing them again when none was done for a while."""

    def __init__(self, report: SoakReport) -> None:
        self.report = report
        self.remaining = _due_count()
        self.progress_at = self.rescued_at = time.monotonic()

    def look(self) -> int:
        """Return how many renewals are due now."""
        remaining, now = _due_count(), time.monotonic()
        if remaining < self.remaining:
            self.progress_at = now
        self.remaining = remaining
        if remaining and now - max(self.progress_at, self.rescued_at) > STALL_RESCUE_SECONDS:
            self.report.renewal_rescues += 1
            self.rescued_at = now
            print(
                f"  no renewal for {STALL_RESCUE_SECONDS}s: queued {_queue_due_renewals()} due renewals again."
            )
        return remaining

    @property
    def stalled(self) -> bool:
        """Return whether nothing was renewed for STALL_FAIL_SECONDS while some are due."""
        return bool(self.remaining) and time.monotonic() - self.progress_at > STALL_FAIL_SECONDS


def _period(
    options: "Options", deployment: "Deployment", traffic: "Traffic", report: SoakReport, period: int
) -> None:
    """Make every subscription due, let the viewers and staff loose, and wait until the period is done."""
    assert deployment.crew is not None and deployment.redis is not None
    from core import clock

    due = _move_clock_past_period_ends()
    print(
        f"\nPeriod {period + 1}: billing time {clock.now():%Y-%m-%d %H:%M}, {due:,} subscriptions due, "
        f"{_queue_due_renewals():,} renewals queued."
    )
    spread = options.spread_seconds
    for number in range(options.new_viewers):
        traffic.new_viewer(
            f"soak-viewer-{period + 1}-{number:05d}", delay=number * spread / options.new_viewers
        )
    for number in range(options.refunds):
        traffic.refund(full=number % 2 == 0, delay=(number + 0.5) * spread / options.refunds)
    watch = _RenewalWatch(report)
    started = last_report = time.monotonic()
    restart_redis = options.redis_restart and period == 0
    while True:
        time.sleep(POLL_SECONDS)
        report.workers_died += deployment.crew.replace_dead()
        remaining, jobs = watch.look(), traffic.jobs_left()
        if restart_redis and due - remaining >= max(due // 3, 1):
            print(f"  restarting the soak's Redis with {remaining:,} renewals still due...")
            deployment.redis.restart(down_seconds=REDIS_DOWN_SECONDS)
            restart_redis = False
        if remaining == 0 and not jobs:
            break
        if watch.stalled:
            report.unfinished.append(f"period {period + 1}: {remaining} renewals never done")
            break
        if time.monotonic() - last_report >= PROGRESS_SECONDS:
            print(
                f"  {due - remaining:,}/{due:,} renewed after {time.monotonic() - started:.0f}s; "
                f"{jobs} viewers and refunds to go; {_queued()} tasks queued"
            )
            last_report = time.monotonic()
    print(f"  period done in {time.monotonic() - started:.0f}s.")
    _book_charges_before_the_clock_moves()


def _past_dead_leases() -> None:
    """Move billing time on past a reconciliation lease, as it passes in production anyway.

    A worker killed in the middle of a reconciliation run leaves its lease held for LEASE (of
    billing time); until it lapses, every run of that job is skipped, by design.
    """
    from core import clock
    from payments.services.reconciliation.runs import LEASE

    clock.advance(LEASE + timedelta(minutes=1))


def _book_charges_before_the_clock_moves() -> None:
    """Run the unbooked-charges job to the end once, as beat would many times in a month.

    The clock then jumps a month, past that job's look-back (a day): a charge it would have
    booked meanwhile (one whose renewal rolled back with a killed worker, and whose
    subscription ended before the renewal ran again) must be found now. The other jobs read on
    from a cursor or from our own rows, so the jump hides nothing from them. Faults still
    strike: a failed run is repeated, and one skipped for a killed worker's lease too.
    """
    from payments.models import ReconciliationRunStatus
    from payments.services.reconciliation import reconcile_unbooked_charges

    _past_dead_leases()
    for _ in range(10):
        if reconcile_unbooked_charges().status == ReconciliationRunStatus.OK:
            return
        time.sleep(1)


def _wait(what: str, done: Any, *, timeout: float = STALL_FAIL_SECONDS) -> bool:
    """Wait until `done()` is true; return False (the caller reports it) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            print(f"  gave up waiting for {what} after {timeout:.0f}s")
            return False
        time.sleep(POLL_SECONDS)
    return True


def _drain(deployment: "Deployment", report: SoakReport) -> None:
    """With the faults off, let the service finish its work, then reconcile until nothing changes.

    Billing time moves on by RECONCILIATION_PENDING_AFTER first: an event whose task was lost
    counts as stuck only after that long, as in production, where the job comes by later.
    """
    import redis
    from django.conf import settings

    from core import clock
    from payments.models import ReconciliationCursor, WebhookEvent, WebhookEventStatus
    from payments.services.reconciliation import reconcile_unbooked_charges
    from tests.concurrency.invariants import settle

    assert deployment.crew is not None and deployment.beat is not None and deployment.sandbox is not None
    report.workers_died += deployment.crew.replace_dead()
    sandbox = deployment.sandbox

    watch = _RenewalWatch(report)
    if not _wait("the last renewals", lambda: watch.look() == 0):
        report.unfinished.append(f"{watch.remaining} subscriptions still due after the faults stopped")

    def webhooks_sent() -> bool:
        return not any(
            sandbox.get("/deliveries", status=status)["count"] for status in ("pending", "in_flight")
        )

    if not _wait("the sandbox's last webhooks", webhooks_sent):
        report.unfinished.append("the sandbox still had webhooks to deliver")

    clock.advance(settings.RECONCILIATION_PENDING_AFTER + timedelta(minutes=1))
    _past_dead_leases()
    deployment.beat.stop()  # from here on, this process runs the jobs: no run must skip for another
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    live_leases = ReconciliationCursor.objects.filter(locked_until__gt=clock.now())
    if not _wait(
        "the workers' queue and reconciliation runs",
        lambda: not broker.llen(CELERY_QUEUE) and not live_leases.exists(),
    ):
        report.unfinished.append("the workers never emptied their queue")

    unhandled = WebhookEvent.objects.exclude(
        status__in=(WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED)
    )
    # A pass may still meet a slow answer (a loaded machine, no fault): what it leaves failed,
    # the next pass retries, as the scheduled runs would. Only the last pass's errors count.
    for _ in range(10):
        settlement = settle()
        unbooked = reconcile_unbooked_charges()
        report.reconciliation_runs += settlement.runs + 1
        report.reconciliation_fixed += settlement.fixed + unbooked.fixed
        errors = settlement.errors + ([f"unbooked charges: {unbooked.error}"] if unbooked.error else [])
        if not unbooked.fixed and not errors and not unhandled.exists():
            break
    else:
        report.reconciliation += errors or ["the reconciliation jobs still changed things after 10 passes"]
    report.unfinished += [
        f"webhook event {event.event_id} ({event.type}) left {event.status} after {event.attempts} "
        f"attempts: {event.last_error}"
        for event in unhandled[:20]
    ]
    _deliver_events(report)


def _deliver_events(report: SoakReport) -> None:
    """Deliver what the outbox still holds (the workers' dispatcher ran while beat did; this is its last run)."""
    from notifications.models import DeliveryStatus, EventDelivery
    from notifications.services.events import deliveries_dispatch

    pending = EventDelivery.objects.exclude(status=DeliveryStatus.DELIVERED)
    _wait("the events to the other services", lambda: deliveries_dispatch() >= 0 and not pending.exists())
    if pending.exists():
        report.unfinished.append(f"{pending.count()} event deliveries still pending")
