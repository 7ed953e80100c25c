"""Run reconciliation now: settle stale pending payments, feed missed provider events, book missed charges."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.gateways import configured_providers
from payments.models import ReconciliationRun, ReconciliationRunStatus
from payments.services.reconciliation import (
    reconcile_events,
    reconcile_pending_payments,
    reconcile_unbooked_charges,
)


class Command(BaseCommand):
    help = (
        "For every payment provider (or the one given): ask it about payments pending longer than "
        "RECONCILIATION_PENDING_AFTER_MINUTES, then read its events since the last run and handle "
        "the ones never received, then book its charges of the last UNBOOKED_CHARGES_LOOKBACK_HOURS "
        "that our rows missed."
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
        providers = sorted(configured_providers())
        # A choice to make only where there is one.
        if len(providers) > 1:
            parser.add_argument(
                "--provider",
                choices=providers,
                help="Reconcile this payment provider only (default: every configured one).",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = settings.RECONCILIATION_PENDING_AFTER
        if options["older_than_minutes"] is not None:
            if options["older_than_minutes"] < 0:
                raise CommandError("--older-than-minutes cannot be negative.")
            older_than = timedelta(minutes=options["older_than_minutes"])
        providers = [options["provider"]] if options.get("provider") else list(configured_providers())
        runs: list[ReconciliationRun] = []
        for provider in providers:
            if options["only"] in (None, "pending"):
                runs.append(reconcile_pending_payments(older_than=older_than, provider=provider))
            if options["only"] in (None, "events"):
                runs.append(reconcile_events(provider=provider))
            if options["only"] in (None, "charges"):
                runs.append(reconcile_unbooked_charges(provider=provider))
        # With one provider the lines read as they always did; with more, each says whose it is.
        name_provider = len(configured_providers()) > 1
        for run in runs:
            whose = f"{run.get_provider_display()}, " if name_provider else ""
            self.stdout.write(
                f"{whose}{run.get_kind_display()}: {run.get_status_display()}, "
                f"examined {run.examined}, fixed {run.fixed} (run {run.pk})."
            )
            if run.error:
                self.stderr.write(run.error)
        if any(run.status == ReconciliationRunStatus.FAILED for run in runs):
            raise CommandError("Reconciliation failed; see the errors above and the run in admin.")
