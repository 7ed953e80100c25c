"""Print the reconciliation report of a UTC day or range: totals on both sides and every mismatch with the provider."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.days import day_argument, utc_yesterday
from payments.gateways import configured_providers, default_provider
from payments.gateways.errors import GatewayError
from payments.services.daily_report import ReportRangeError, provider_label, reconciliation_report


class Command(BaseCommand):
    help = (
        "Compare our captured payments and succeeded refunds of a UTC day (--day) or range of days "
        "(--from, --to, both included) with the payment provider's charges, refunds and ledger "
        "entries; print the totals per currency and every mismatch. Without dates: yesterday, the "
        "day a daily schedule reports on. Exits with an error when there is a mismatch, so a "
        "scheduler can alert on it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", type=day_argument, help="One UTC day, YYYY-MM-DD (default: yesterday).")
        parser.add_argument(
            "--from", dest="date_from", type=day_argument, help="The first UTC day of a range, YYYY-MM-DD."
        )
        parser.add_argument(
            "--to",
            dest="date_to",
            type=day_argument,
            help="The last UTC day of a range, included, YYYY-MM-DD (default: the --from day).",
        )
        providers = sorted(configured_providers())
        # A choice to make only where there is one.
        if len(providers) > 1:
            parser.add_argument(
                "--provider",
                choices=providers,
                help="The payment provider to compare with (default: the one new payments go through).",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        day, date_from, date_to = options["day"], options["date_from"], options["date_to"]
        if day is not None and (date_from is not None or date_to is not None):
            raise CommandError(_("Give either --day or --from and --to, not both."))
        date_from = date_from or date_to or day or utc_yesterday()
        date_to = date_to or date_from
        provider = options.get("provider") or default_provider()
        their = provider_label(provider)
        span = date_from.isoformat() if date_from == date_to else f"{date_from}/{date_to}"
        try:
            report = reconciliation_report(date_from=date_from, date_to=date_to, provider=provider)
        except ReportRangeError as exc:
            raise CommandError(str(exc)) from exc
        except GatewayError as exc:
            raise CommandError(
                _("Could not read %(provider)s's records for %(day)s: %(error)s")
                % {"provider": their, "day": span, "error": exc.message}
            ) from exc
        if report.is_one_day:
            self.stdout.write(_("Reconciliation report for %(day)s (UTC)") % {"day": span})
        else:
            self.stdout.write(
                _("Reconciliation report for %(from)s to %(to)s (UTC)")
                % {"from": date_from.isoformat(), "to": date_to.isoformat()}
            )
        if not report.totals:
            self.stdout.write(
                _("No money moved on this day, on either side.")
                if report.is_one_day
                else _("No money moved in these days, on either side.")
            )
        for row in report.totals:
            self.stdout.write(
                _(
                    "%(currency)s: ours %(payments)d payments, gross %(gross)s, refunds %(refunds)s, net %(net)s; "
                    "%(provider)s %(charges)d charges, gross %(p_gross)s, refunds %(p_refunds)s, fees %(fees)s, "
                    "net %(p_net)s"
                )
                % {
                    "currency": row.currency,
                    "payments": row.our_payments,
                    "gross": row.our_gross_money,
                    "refunds": row.our_refunds_money,
                    "net": row.our_net_money,
                    "provider": their,
                    "charges": row.provider_charges,
                    "p_gross": row.provider_gross_money,
                    "p_refunds": row.provider_refunds_money,
                    "fees": row.provider_fees_money,
                    "p_net": row.provider_net_money,
                }
            )
        if report.is_clean:
            self.stdout.write(_("No mismatches."))
            return
        for mismatch in report.mismatches:
            self.stdout.write(
                _(
                    "%(what)s: %(object)s %(ours_id)s / %(their_id)s: we have %(ours)s, %(provider)s has %(theirs)s"
                )
                % {
                    "what": mismatch.label,
                    "object": mismatch.object_label,
                    "ours_id": mismatch.our_id or "-",
                    "their_id": mismatch.their_id or "-",
                    "ours": mismatch.ours,
                    "provider": their,
                    "theirs": mismatch.theirs,
                }
            )
        count = len(report.mismatches)
        raise CommandError(
            ngettext(
                "%(count)d mismatch with %(provider)s.", "%(count)d mismatches with %(provider)s.", count
            )
            % {"count": count, "provider": their}
        )
