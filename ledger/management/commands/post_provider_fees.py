"""Post the fees and payouts the payment providers booked on a UTC day (each line once)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from core.days import day_argument, utc_yesterday
from ledger.services.settlement import provider_settlement_post
from payments.gateways import configured_providers
from payments.gateways.errors import GatewayError


class Command(BaseCommand):
    help = (
        "Read each payment provider's settlement lines (Stripe's balance transactions) of a UTC day "
        "(--day, default yesterday) and post every fee to provider fees and every payout to the "
        "provider's payouts account, out of its clearing account. A line already posted is not "
        "posted again, so a day may be run as often as needed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", type=day_argument, help="The UTC day, YYYY-MM-DD (default: yesterday).")
        providers = sorted(configured_providers())
        # A choice to make only where there is one.
        if len(providers) > 1:
            parser.add_argument(
                "--provider",
                choices=providers,
                help="Post this payment provider's lines only (default: every configured one).",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        day = options["day"] or utc_yesterday()
        providers = [options["provider"]] if options.get("provider") else sorted(configured_providers())
        failed = False
        for provider in providers:
            try:
                posted = provider_settlement_post(provider=provider, day=day)
            except GatewayError as exc:
                failed = True
                self.stderr.write(
                    _("Could not read %(provider)s's settlement lines for %(day)s: %(error)s")
                    % {"provider": provider, "day": day.isoformat(), "error": exc.message}
                )
                continue
            self.stdout.write(
                _(
                    "%(provider)s, %(day)s: %(lines)d settlement lines, %(fees)d fees and %(payouts)d payouts posted."
                )
                % {
                    "provider": provider,
                    "day": day.isoformat(),
                    "lines": posted.lines,
                    "fees": posted.fees,
                    "payouts": posted.payouts,
                }
            )
        if failed:
            raise CommandError(_("Some providers could not be read; run the day again later."))
