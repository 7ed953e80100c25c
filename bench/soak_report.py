"""What bench/soak prints, writes to docs/benchmarks.md and hands the test suite as JSON."""

import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bench.report import markdown_paragraph

if TYPE_CHECKING:
    from bench.soak import Options

KEPT = 20  # examples of each kind of problem printed


@dataclass
class SoakReport:
    """What a soak threw at the service, what it survived, and every rule it found broken."""

    # What ran.
    subscriptions: int = 0
    periods: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    # What was injected.
    faults: dict[str, int] = field(default_factory=dict)  # hits, by kind
    workers_killed: int = 0
    # Workers that exited on their own, restarted as the compose file's restart policy would:
    # no money rule, but a bug all the same (docs/benchmarks.md, "Reading the soak").
    workers_died: list[str] = field(default_factory=list)
    redis_restarts: int = 0
    webhook_deliveries: int = 0
    webhook_events: int = 0
    webhooks_sent_twice: int = 0
    webhooks_overtaken: int = 0
    webhook_answers: dict[str, int] = field(default_factory=dict)
    # What the service did.
    renewals: int = 0  # renewal payments Stripe accepted
    renewal_rescues: int = 0  # times the soak queued stalled renewals itself (see the docs' notes)
    new_viewers: int = 0
    new_viewers_subscribed: int = 0
    subscribe_answers: dict[str, int] = field(default_factory=dict)
    subscribe_retries: int = 0
    pages_paid: dict[str, int] = field(default_factory=dict)
    access_polls: dict[str, int] = field(default_factory=dict)
    access_seconds_median: float = 0.0
    refunds_full: int = 0
    refunds_partial: int = 0
    refunds_refused: dict[str, int] = field(default_factory=dict)
    refund_submissions: int = 0
    charges: int = 0
    charges_refunded: int = 0
    periods_checked: int = 0
    events_published: int = 0
    events_received: int = 0
    event_repeats: int = 0
    events_cut_off: int = 0
    reconciliation_runs: int = 0
    reconciliation_fixed: int = 0
    money_days: int = 0
    ledger_entries: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_refused_without_token: bool = False
    # The rules, each a list of what broke it (empty: held).
    double_charges: list[str] = field(default_factory=list)
    not_charged_once: list[str] = field(default_factory=list)
    lost_payments: list[str] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)
    reconciliation: list[str] = field(default_factory=list)
    ledger: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    access: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)

    RULES = (
        ("double_charges", "charged twice for one period"),
        ("not_charged_once", "periods not charged exactly once"),
        ("lost_payments", "lost payments (charged, neither access nor refunded)"),
        ("inconsistencies", "inconsistent with Stripe or with itself"),
        ("reconciliation", "reconciliation errors and report mismatches"),
        ("ledger", "ledger_check mismatches"),
        ("events", "events missing, repeated out of order or badly signed"),
        ("access", "viewers told the wrong access"),
        ("server_errors", "5xx answers but 503, no answers, deadlocks"),
        ("unfinished", "work left unfinished"),
    )

    @property
    def ok(self) -> bool:
        return not any(getattr(self, name) for name, _ in self.RULES)

    def as_json(self) -> dict[str, Any]:
        """Return every figure and finding, for the test suite."""
        return {**asdict(self), "ok": self.ok}

    def figure_lines(self) -> list[str]:
        """Return what was injected and what the service did, as lines of text."""

        def counts(values: dict[str, Any]) -> str:
            return ", ".join(f"{key}: {value:g}" for key, value in values.items()) or "none"

        metrics = [f"  {name}: {value:g}" for name, value in self.metrics.items()]
        return [
            f"subscriptions renewing: {self.subscriptions:,}, over {self.periods} periods; "
            f"renewal charges accepted: {self.renewals:,}",
            f"new viewers: {self.new_viewers} ({self.new_viewers_subscribed} got a page, "
            f"{self.subscribe_retries} retried subscribes); subscribe answers: {counts(self.subscribe_answers)}; "
            f"pages paid: {counts(self.pages_paid)}; median wait for access after paying "
            f"{self.access_seconds_median:.1f} s",
            f"access polls by paying viewers: {counts(self.access_polls)}",
            f"refunds by staff: {self.refunds_full} full, {self.refunds_partial} partial "
            f"({self.refund_submissions} form submissions; refused: {counts(self.refunds_refused)})",
            f"faults the sandbox injected: {counts(self.faults)}",
            f"workers SIGKILLed and replaced: {self.workers_killed}; private Redis restarts: "
            f"{self.redis_restarts}; renewals the soak re-queued after a stall: {self.renewal_rescues}",
            f"workers that crashed on their own and were restarted: {len(self.workers_died)}",
            *(f"  {death}" for death in self.workers_died[:KEPT]),
            f"webhooks: {self.webhook_deliveries:,} deliveries of {self.webhook_events:,} events; "
            f"sent twice: {self.webhooks_sent_twice:,}; overtaken by a later event: {self.webhooks_overtaken:,}; "
            f"our answers: {counts(self.webhook_answers)}",
            f"charges Stripe accepted: {self.charges:,} ({self.charges_refunded} refunded in full); "
            f"subscription periods checked: {self.periods_checked:,}",
            f"events to other services: {self.events_published:,} published, {self.events_received:,} "
            f"received ({self.event_repeats} repeated deliveries; {self.events_cut_off} posts cut off by a "
            "killed worker)",
            f"reconciliation at the end: {self.reconciliation_runs} runs, {self.reconciliation_fixed} fixes; "
            f"report compared on {self.money_days} days; ledger entries checked: {self.ledger_entries:,}",
            "metrics (/metrics of the web processes, which add up every process's counts"
            + (", refused without the token):" if self.metrics_refused_without_token else "):"),
            *(metrics or ["  (none scraped)"]),
            "seconds: " + ", ".join(f"{phase} {value:.0f}" for phase, value in self.seconds.items()),
        ]

    @property
    def drift(self) -> int:
        """Return how many ways our books disagree with Stripe, the reconciliation report or the ledger."""
        return len(self.inconsistencies) + len(self.reconciliation) + len(self.ledger)

    def headline(self) -> str:
        """Return the three figures the soak is run for."""
        return (
            f"double charges: {len(self.double_charges)}; lost payments: {len(self.lost_payments)}; "
            f"drift: {self.drift}"
        )

    def rule_lines(self) -> list[str]:
        """Return the headline, then the rules, each with how many times it broke and the first examples."""
        lines = [self.headline()]
        for name, label in self.RULES:
            found = getattr(self, name)
            lines.append(f"{label}: {len(found)}")
            lines += [f"  {problem}" for problem in found[:KEPT]]
        return lines

    def lines(self) -> list[str]:
        return [*self.figure_lines(), "", *self.rule_lines()]


def docs_block(
    options: "Options", report: SoakReport, *, started_at: datetime, load: float, commit: str
) -> str:
    """Return the Markdown block of docs/benchmarks.md for one run."""
    verdict = (
        "**Every rule held**: zero double charges, zero lost payments, zero drift between our rows, "
        "Stripe, the reconciliation report and the ledger, every event delivered in order."
        if report.ok
        else "**Failed:** see the rules above with a count other than 0."
    )
    machine = (
        f"**Machine:** {os.cpu_count()} CPU cores ({platform.machine()}), shared with other work (load "
        f"average {load:.2f} at the start). **Code:** commit {commit} and the working tree as it was. "
        f"**Deployment:** gunicorn (2 workers x {options.web_threads} threads), 2 Celery workers "
        f"(threads x {options.concurrency}) and beat under `bench.soak_settings` on the throwaway "
        f"`{options.database}` database and a Redis of the soak's own; the offline Stripe sandbox in its own "
        f"process; outgoing rate limit "
        + (f"{options.rate}/s, shared through that Redis." if options.rate else "off.")
    )
    paragraphs = [
        f"_Generated by `bench/soak.py` on {started_at:%Y-%m-%d %H:%M} UTC; rerun it to refresh this block. "
        "Notes written by hand follow it._",
        f"```\n{options.command()}\n```",
        machine,
        "What was thrown at it and what it did:",
        "```\n" + "\n".join(report.figure_lines()) + "\n```",
        "The rules, checked after the faults stopped and the reconciliation jobs had run until a pass "
        "changed nothing (each count is of what broke it):",
        "```\n" + "\n".join(report.rule_lines()) + "\n```",
        f"{verdict} The seconds are what this run took on a shared machine, not targets.",
    ]
    return "\n\n".join(markdown_paragraph(paragraph) for paragraph in paragraphs) + "\n"
