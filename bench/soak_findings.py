"""What bench/soak found: every money rule checked, and what viewers, staff and faults did, in the report.

`findings_record` runs the checks of bench/soak_checks.py once the service has settled and
fills the report; `metrics_record` scrapes /metrics as Prometheus would.
"""

import random
import statistics
import urllib.error
import urllib.request
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bench import soak_checks as checks
from bench.soak_report import SoakReport

if TYPE_CHECKING:
    from bench.soak import Deployment, Options
    from bench.soak_subscribe import SandboxControl
    from bench.soak_traffic import Traffic


def findings_record(
    options: "Options",
    deployment: "Deployment",
    traffic: "Traffic",
    control: "SandboxControl",
    seeded: dict[Any, datetime],
    report: SoakReport,
) -> None:
    """Check every money rule, and note what viewers, staff and the faults did."""
    assert deployment.sandbox is not None and deployment.receiver is not None
    print("Checking the money rules...")
    _charges(report, control, seeded)
    _books(report)
    _events(report, deployment)
    _viewers_and_staff(report, options, traffic)
    if deadlocks := checks.deadlocks():
        report.server_errors.append(f"PostgreSQL detected {deadlocks} deadlocks")
    _leftovers(report)


def _charges(report: SoakReport, control: "SandboxControl", seeded: dict[Any, datetime]) -> None:
    """Check every charge Stripe accepted: once per period, none lost, our rows consistent with it."""
    from accounts.models import BillingAccount
    from payments.models import PAID_STATUSES, Payment, PaymentKind
    from tests.concurrency.invariants import StripeView, charge_fates, invariant_violations

    view = StripeView.read(control.objects)
    payments = list(Payment.objects.select_related("subscription__account"))
    fates = charge_fates(view, payments)
    report.charges = len(fates)
    report.charges_refunded = sum(1 for fate in fates if fate.fate == "refunded")
    report.lost_payments = [str(fate) for fate in fates if fate.fate == "lost"]
    report.renewals = sum(1 for p in payments if p.kind == PaymentKind.RENEWAL and p.status in PAID_STATUSES)
    # The seeded subscriptions were paid up to the soak's first period; a new viewer's first
    # period is the one its checkout paid.
    first_paid = dict(seeded)
    for payment in payments:
        if payment.kind == PaymentKind.INITIAL and payment.status in PAID_STATUSES and payment.period_start:
            first_paid.setdefault(payment.subscription_id, payment.period_start)
    periods = checks.period_charges(fates, first_paid)
    report.periods_checked = periods.periods
    report.double_charges, report.not_charged_once = periods.double, periods.not_once
    account_ids = list(BillingAccount.objects.values_list("pk", flat=True))
    consistency = invariant_violations(view=view, account_ids=account_ids, settled=True)
    report.inconsistencies = [line for line in consistency if not line.startswith("lost ")]  # told above


def _books(report: SoakReport) -> None:
    """Check the reconciliation report of every day money moved, and the ledger."""
    days = checks.money_days()
    report.money_days = len(days)
    report.reconciliation += checks.reconciliation_mismatches(days)
    ledger = checks.ledger_check_command()
    report.ledger_entries, report.ledger = ledger.entries, ledger.problems


def _events(report: SoakReport, deployment: "Deployment") -> None:
    """Check the events the other services received, and count the webhooks as Stripe sent them."""
    assert deployment.sandbox is not None and deployment.receiver is not None
    received = deployment.receiver.received
    events = checks.events_delivered_in_order(received)
    report.events_published, report.events_received = events.published, events.received
    report.event_repeats, report.events_cut_off, report.events = (
        events.repeats,
        received.cut_off,
        events.problems,
    )
    webhooks = checks.webhooks_as_sent(deployment.sandbox.get("/deliveries")["data"])
    report.webhook_deliveries, report.webhook_events = webhooks.deliveries, webhooks.events
    report.webhooks_sent_twice, report.webhooks_overtaken = webhooks.sent_twice, webhooks.overtaken
    report.webhook_answers = dict(webhooks.attempts)
    report.server_errors += webhooks.server_errors
    report.unfinished += webhooks.undelivered


def _viewers_and_staff(report: SoakReport, options: "Options", traffic: "Traffic") -> None:
    """Note what viewers and staff did; check the access viewers were told, then and now."""
    viewers, refunds = traffic.viewers, traffic.refunds
    report.new_viewers, report.new_viewers_subscribed = len(viewers.new_user_ids), viewers.subscribed
    report.subscribe_answers = {str(status): n for status, n in sorted(viewers.subscribes.statuses.items())}
    report.subscribe_retries, report.pages_paid = viewers.subscribe_retries, dict(viewers.paid)
    report.access_polls = {str(status): n for status, n in sorted(viewers.polls.statuses.items())}
    if viewers.access_seconds:
        report.access_seconds_median = statistics.median(viewers.access_seconds)
    report.refunds_full, report.refunds_partial = refunds.full, refunds.partial
    report.refunds_refused, report.refund_submissions = dict(refunds.refused), refunds.submissions

    report.access += [
        f"a paying viewer was told no access: {line}" for line in traffic.denials_of_paying_viewers()
    ]
    report.access += viewers.no_access_in_time
    paying = [f"bench-viewer-{number}" for number in range(options.subscriptions)]
    sample = random.Random(options.seed).sample(paying, min(options.access_sample, len(paying)))
    report.access += checks.access_mismatches([*sample, *viewers.new_user_ids], traffic.access)
    for tally in (viewers.polls, viewers.subscribes, viewers.checkout_polls):
        if tally.broken:
            report.server_errors.append(f"{tally.broken_count} answers like {tally.broken[0]}")


def _leftovers(report: SoakReport) -> None:
    """Name the payments and refunds still waiting for the provider's word: none may be."""
    from payments.models import Payment, PaymentStatus, Refund, RefundStatus

    if pending := Payment.objects.filter(status=PaymentStatus.PENDING).count():
        report.unfinished.append(f"{pending} payments still pending")
    if pending := Refund.objects.filter(status=RefundStatus.PENDING).count():
        report.unfinished.append(f"{pending} refunds still pending")


def metrics_record(report: SoakReport, base_url: str, *, token: str) -> None:
    """Read /metrics as Prometheus would, with the token; check that it is refused without."""
    url = f"{base_url}/metrics"
    try:
        urllib.request.urlopen(url, timeout=30)
    except urllib.error.HTTPError as exc:
        report.metrics_refused_without_token = exc.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        report.metrics = checks.scrape(response.read().decode())
