"""Move the demo's billing clock forward and run whatever fell due, day by day."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core import clock
from ledger.services.recognition import revenue_recognize
from notifications.services.card_expiry import card_expiry_notices_record
from notifications.services.notices import notices_record_upcoming
from payments.services.renewals import RenewalOutcome, renewal_run, renewals_due, subscriptions_expire_due


class Command(BaseCommand):
    help = (
        "Move the billing clock forward N days, running renewals, dunning, expiry, the notices "
        "that fall due (card expiry included) and revenue recognition as each day passes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, required=True, help="Days to move forward (1 or more).")

    def handle(self, *args: Any, **options: Any) -> None:
        if getattr(settings, "BILLING_PRODUCTION", False):
            raise CommandError("The billing clock cannot be moved under production settings.")
        if options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        outcomes: dict[str, int] = {}
        expired = 0
        for _ in range(options["days"]):
            # One day at a time, so each dunning retry and expiry happens on its own day.
            try:
                now = clock.advance(timedelta(days=1))
            except clock.ClockNotMovable as exc:
                raise CommandError(str(exc)) from exc
            after = None
            while ids := renewals_due(now=now, limit=settings.BILLING_RENEWAL_BATCH_SIZE, after=after):
                for subscription_id in ids:
                    outcome = renewal_run(subscription_id=subscription_id)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                after = ids[-1]
            expired += subscriptions_expire_due(now=now)
            notices_record_upcoming(now=now)  # expiring-soon and trial-ending emails fall due too
            card_expiry_notices_record(now=now)  # and the warning of a card that expires before its renewal
            # The day that just ended is earned, as the nightly job would: each day its own revenue.
            revenue_recognize(day=now.date() - timedelta(days=1))
        summary = (
            ", ".join(f"{RenewalOutcome(k).value}: {v}" for k, v in sorted(outcomes.items())) or "no renewals"
        )
        self.stdout.write(
            f"Billing time is now {clock.now():%Y-%m-%d %H:%M} UTC. {summary}; expired: {expired}."
        )
