"""Run reconciliation now: settle stale pending payments, feed missed Stripe events, book missed charges."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.models import ReconciliationRun, ReconciliationRunStatus
from payments.services.reconciliation import (
    reconcile_events,
    reconcile_pending_payments,
    reconcile_unbooked_charges,
)


class Command(BaseCommand):
    help = (
        "Ask Stripe about payments pending longer than RECONCILIATION_PENDING_AFTER_MINUTES, then "
        "read Stripe's events since the last run and handle the ones never received, then book "
        "Stripe's charges of the last UNBOOKED_CHARGES_LOOKBACK_HOURS that our rows missed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--only", choices=("pending", "events", "charges"), help="Run one of the jobs instead of all."
        )
        parser.add_argument(
            "--older-than-minutes",
            type=int,
            help="Settle payments pending longer than this (default: the setting; 0 = all).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = settings.RECONCILIATION_PENDING_AFTER
        if options["older_than_minutes"] is not None:
            if options["older_than_minutes"] < 0:
                raise CommandError("--older-than-minutes cannot be negative.")
            older_than = timedelta(minutes=options["older_than_minutes"])
        runs: list[ReconciliationRun] = []
        if options["only"] in (None, "pending"):
            runs.append(reconcile_pending_payments(older_than=older_than))
        if options["only"] in (None, "events"):
            runs.append(reconcile_events())
        if options["only"] in (None, "charges"):
            runs.append(reconcile_unbooked_charges())
        for run in runs:
            self.stdout.write(
                f"{run.get_kind_display()}: {run.get_status_display()}, "
                f"examined {run.examined}, fixed {run.fixed} (run {run.pk})."
            )
            if run.error:
                self.stderr.write(run.error)
        if any(run.status == ReconciliationRunStatus.FAILED for run in runs):
            raise CommandError("Reconciliation failed; see the errors above and the run in admin.")
