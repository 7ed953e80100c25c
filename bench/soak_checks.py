"""The money rules bench/soak proves at the end, each as a user or an accountant would notice it.

Every function returns the problems it found (an empty list: none), or figures. They read
what the Stripe sandbox holds (`StripeView`, tests/concurrency/invariants.py), our rows, the
signed events the other services received, and the service's own answers over HTTP.
"""

import json
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bench.renewals_processes import ROOT
from bench.soak_processes import ReceivedEvents

if TYPE_CHECKING:
    from tests.concurrency.invariants import ChargeFate


# --- charged exactly once per period ------------------------------------------------------------


@dataclass
class PeriodCharges:
    """Each subscription's periods against the charges Stripe accepted for them."""

    periods: int = 0  # periods that had to be paid, over every subscription
    double: list[str] = field(default_factory=list)
    not_once: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [*self.double, *self.not_once]


def period_charges(fates: list["ChargeFate"], first_paid: dict[Any, datetime]) -> PeriodCharges:
    """Check that every subscription was charged exactly once for each period it was in.

    `first_paid` is, per subscription, the start of the first period it had to pay for (the
    soak's seeded subscriptions were created already in a period, paid before it began). Every
    period from there to its current one must have exactly one charge that Stripe accepted; no
    period may have two (refunded or not: the viewer saw both); a charge for a period the
    subscription never reached must have been refunded in full.
    """
    from billing.models import Subscription
    from billing.periods import next_period_end

    charges: dict[tuple[Any, datetime | None], list[ChargeFate]] = defaultdict(list)
    for fate in fates:
        if fate.payment is not None:  # one with no row of ours is a lost payment, told apart
            charges[(fate.payment.subscription_id, fate.payment.period_start)].append(fate)
    result = PeriodCharges()
    for (subscription_id, start), found in charges.items():
        if len(found) > 1:
            refunded = sum(1 for fate in found if fate.fate == "refunded")
            result.double.append(
                f"subscription {subscription_id}, period from {start:%Y-%m-%d %H:%M}: charged {len(found)} "
                f"times ({', '.join(fate.intent_id for fate in found)}; {refunded} refunded in full)"
            )
    expected: set[tuple[Any, datetime]] = set()
    subscriptions = Subscription.objects.filter(pk__in=list(first_paid)).select_related("tariff")
    for subscription in subscriptions.iterator():
        start, current = first_paid[subscription.pk], subscription.current_period_start
        while current is not None and start <= current:
            expected.add((subscription.pk, start))
            start = next_period_end(
                anchor=subscription.billing_anchor,  # type: ignore[arg-type]
                period_end=start,
                unit=subscription.tariff.period_unit,
                count=subscription.tariff.period_count,
            )
    result.periods = len(expected)
    for subscription_id, start in sorted(expected, key=str):
        count = len(charges.get((subscription_id, start), []))
        if count == 0:
            result.not_once.append(
                f"subscription {subscription_id} is in (or was in) the period from {start:%Y-%m-%d %H:%M}, "
                "which no charge paid"
            )
    for (subscription_id, start), found in charges.items():
        if start is not None and (subscription_id, start) not in expected:
            kept = [fate for fate in found if fate.fate != "refunded"]
            if kept and subscription_id in first_paid:
                result.not_once.append(
                    f"subscription {subscription_id}: charge {kept[0].intent_id} for the period from "
                    f"{start:%Y-%m-%d %H:%M}, which it never reached, was not refunded"
                )
    return result


# --- the reconciliation report --------------------------------------------------------------


def money_days() -> list[date]:
    """Return the UTC days on which a payment was taken or a refund paid back (billing time)."""
    from django.db.models.functions import TruncDate

    from payments.models import PAID_STATUSES, Payment, Refund, RefundStatus

    paid = Payment.objects.filter(status__in=PAID_STATUSES, paid_at__isnull=False)
    refunded = Refund.objects.filter(status=RefundStatus.SUCCEEDED, succeeded_at__isnull=False)
    days = set(paid.annotate(day=TruncDate("paid_at")).values_list("day", flat=True))
    days |= set(refunded.annotate(day=TruncDate("succeeded_at")).values_list("day", flat=True))
    return sorted(days)


def reconciliation_mismatches(days: Iterable[date]) -> list[str]:
    """Return every mismatch the reconciliation report finds with Stripe on these days."""
    from payments.services.daily_report import reconciliation_report_for_day

    problems = []
    for day in days:
        report = reconciliation_report_for_day(day=day)
        problems += [
            f"{day}: {mismatch.label}: {mismatch.object_label} {mismatch.our_id or '-'} / "
            f"{mismatch.their_id or '-'}: we have {mismatch.ours}, Stripe has {mismatch.theirs}"
            for mismatch in report.mismatches
        ]
    return problems


# --- the ledger ----------------------------------------------------------------------------------


@dataclass
class LedgerFigures:
    """What `ledger_check` counted, and every mismatch it printed."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)


def ledger_check_command() -> LedgerFigures:
    """Run `manage.py ledger_check --json` as an operator would, under the soak's settings."""
    result = subprocess.run(
        [sys.executable, "manage.py", "ledger_check", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        found = json.loads(result.stdout)
    except ValueError:
        return LedgerFigures(
            problems=[f"ledger_check printed no JSON (exit {result.returncode}): {result.stderr}"]
        )
    figures = LedgerFigures(entries=int(found.get("entries", 0)))
    if not found.get("balanced", False):
        figures.problems.append(
            f"the books do not balance: {found.get('unbalanced_entries')} unbalanced entries"
        )
    figures.problems += [
        f"{m['check']}: {m['subject']} {m['currency']}: expected {m['expected']}, found {m['found']}"
        for m in found.get("mismatches", [])
    ]
    if result.returncode != 0 and not figures.problems:
        figures.problems.append(f"ledger_check exited {result.returncode}: {result.stderr.strip()}")
    return figures


# --- events to the other services ----------------------------------------------------------


@dataclass
class EventFigures:
    """The events the outbox published against those the other services received."""

    published: int = 0
    received: int = 0
    repeats: int = 0  # at least once: the same event sent again after a cut-off attempt
    problems: list[str] = field(default_factory=list)


def events_delivered_in_order(received: ReceivedEvents) -> EventFigures:
    """Check that every event reached the endpoint, each subscription's in the order they happened.

    A delivery may repeat (a worker killed after the POST, before it wrote down the answer), but
    an event must never arrive after a later one of its subscription, and none may be missing.
    """
    from django.db.models import Count, Max

    from notifications.models import DeliveryStatus, EventDelivery, OutboxEvent

    figures = EventFigures(received=sum(len(numbers) for numbers in received.sequences.values()))
    published = {
        str(row["subscription_id"]): (row["last"], row["count"])
        for row in OutboxEvent.objects.values("subscription_id").annotate(
            last=Max("sequence"), count=Count("pk")
        )
    }
    figures.published = sum(count for _, count in published.values())
    pending = EventDelivery.objects.exclude(status=DeliveryStatus.DELIVERED).count()
    if pending:
        figures.problems.append(f"{pending} deliveries of events are still not delivered")
    if received.bad_signatures or received.unreadable:
        figures.problems.append(
            f"{received.bad_signatures} posts with a signature that does not verify, {received.unreadable} unreadable"
        )
    for subscription, (last, count) in published.items():
        numbers = received.sequences.get(subscription, [])
        figures.repeats += len(numbers) - len(set(numbers))
        missing = sorted(set(range(1, last + 1)) - set(numbers))
        if missing or count != last:
            figures.problems.append(f"subscription {subscription}: events {missing[:10]} never arrived")
        highest = 0
        for number in numbers:
            if number < highest:
                figures.problems.append(
                    f"subscription {subscription}: event {number} arrived after event {highest} "
                    f"(arrival order {numbers[:12]})"
                )
                break
            highest = number
    strays = set(received.sequences) - set(published)
    if strays:
        figures.problems.append(f"events arrived for {len(strays)} subscriptions that published none")
    return figures


# --- webhooks as Stripe sent them ------------------------------------------------------------


@dataclass
class WebhookFigures:
    """The webhooks as the sandbox sent them, and how we answered."""

    deliveries: int = 0
    events: int = 0
    sent_twice: int = 0
    overtaken: int = 0  # events that reached us after an event recorded later
    attempts: Counter[str] = field(default_factory=Counter)  # our answers, by status
    server_errors: list[str] = field(default_factory=list)  # answered a 5xx other than 503
    undelivered: list[str] = field(default_factory=list)  # never accepted


def webhooks_as_sent(deliveries: list[dict[str, Any]]) -> WebhookFigures:
    """Count what the sandbox sent: duplicates, events overtaken by later ones, our answers.

    Every delivery must have ended accepted, and none may have been answered with a 5xx other
    than 503 (our "try again later").
    """
    figures = WebhookFigures(deliveries=len(deliveries))
    first_accepted: dict[str, float] = {}
    recorded: dict[str, float] = {}
    per_event: Counter[str] = Counter()
    for delivery in deliveries:
        event = delivery["event"]
        per_event[event] += 1
        recorded[event] = min(recorded.get(event, delivery["created"]), delivery["created"])
        if delivery["status"] != "succeeded":
            figures.undelivered.append(f"webhook {delivery['type']} {event}: {delivery['status']}")
        for attempt in delivery["attempts"]:
            code = attempt["status_code"]
            figures.attempts[str(code) if code is not None else "no answer"] += 1
            if code is not None and 200 <= code < 300:
                first_accepted[event] = min(first_accepted.get(event, attempt["at"]), attempt["at"])
            elif code is not None and code >= 500 and code != 503:
                figures.server_errors.append(f"webhook {delivery['type']} {event} answered {code}")
    figures.events = len(per_event)
    figures.sent_twice = sum(1 for count in per_event.values() if count > 1)
    soonest_later = float("inf")
    for event in sorted(first_accepted, key=lambda name: recorded[name], reverse=True):
        if soonest_later < first_accepted[event]:
            figures.overtaken += 1
        soonest_later = min(soonest_later, first_accepted[event])
    return figures


# --- access as viewers see it ----------------------------------------------------------------


def access_mismatches(
    user_ids: list[str], ask: Callable[[str], tuple[int, Any]], *, threads: int = 8
) -> list[str]:
    """Ask the service for each viewer's access over HTTP and compare it with their subscriptions.

    A viewer has access when one of their subscriptions gives it by the service's own rule
    (`gives_access`); the answer must say so, from whichever web process answers.
    """
    from billing.models import Subscription
    from tests.concurrency.invariants import gives_access

    expected = {user_id: False for user_id in user_ids}
    for subscription in Subscription.objects.filter(account__user_id__in=user_ids).select_related("account"):
        expected[subscription.account.user_id] |= gives_access(subscription)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        answers = dict(zip(user_ids, pool.map(ask, user_ids), strict=True))
    problems = []
    for user_id, (status, body) in answers.items():
        if status != 200:
            problems.append(f"{user_id}: GET /api/v1/access/ answered {status}")
        elif body["has_access"] != expected[user_id]:
            problems.append(
                f"{user_id}: told has_access={body['has_access']}, their subscription says {expected[user_id]}"
            )
    return problems


# --- the database itself -----------------------------------------------------------------------


def deadlocks() -> int:
    """Return how many deadlocks PostgreSQL detected in the soak's database since it was created."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


# --- the metrics -----------------------------------------------------------------------------------


def scrape(text: str) -> dict[str, float]:
    """Return the counters of a /metrics page that tell what happened, summed by the labels that matter.

    Keys read like `renewals{outcome=renewed}`; the processes' per-pid files are already summed
    by the scrape (multiprocess mode).
    """
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {
        "billing_renewals_total": ("renewals", ("outcome",)),
        "billing_provider_calls_total": ("provider calls", ("outcome",)),
        "billing_webhook_events_received_total": ("webhook events received", ("source", "duplicate")),
        "billing_webhook_events_handled_total": ("webhook events handled", ("outcome",)),
        "billing_http_requests_total": ("HTTP answers", ("status",)),
    }
    figures: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                name, labels = wanted[sample.name]
                values = {label: sample.labels.get(label, "") for label in labels}
                status = values.get("status", "5")
                if not status.startswith("5"):
                    values["status"] = status[0] + "xx"  # every 5xx by its code: a 503 is not a 500
                key = ",".join(f"{label}={value}" for label, value in values.items())
                figures[f"{name}{{{key}}}"] += sample.value
    return dict(sorted(figures.items()))
