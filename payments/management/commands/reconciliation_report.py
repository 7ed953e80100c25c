"""Print the reconciliation report of a UTC day or range: totals on both sides and every mismatch with Stripe."""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.days import day_parse, utc_yesterday
from payments.gateways.base import GatewayError
from payments.services.daily_report import ReportRangeError, reconciliation_report


def _day(value: str) -> date:
    try:
        return day_parse(value)
    except ValueError as exc:
        raise CommandError(_("Enter the day as YYYY-MM-DD.")) from exc


class Command(BaseCommand):
    help = (
        "Compare our captured payments and succeeded refunds of a UTC day (--day) or range of days "
        "(--from, --to, both included) with Stripe's charges, refunds and balance transactions; "
        "print the totals per currency and every mismatch. Without dates: yesterday, the day a "
        "daily schedule reports on. Exits with an error when there is a mismatch, so a scheduler "
        "can alert on it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", type=_day, help="One UTC day, YYYY-MM-DD (default: yesterday).")
        parser.add_argument(
            "--from", dest="date_from", type=_day, help="The first UTC day of a range, YYYY-MM-DD."
        )
        parser.add_argument(
            "--to",
            dest="date_to",
            type=_day,
            help="The last UTC day of a range, included, YYYY-MM-DD (default: the --from day).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day, date_from, date_to = options["day"], options["date_from"], options["date_to"]
        if day is not None and (date_from is not None or date_to is not None):
            raise CommandError(_("Give either --day or --from and --to, not both."))
        date_from = date_from or date_to or day or utc_yesterday()
        date_to = date_to or date_from
        span = date_from.isoformat() if date_from == date_to else f"{date_from}/{date_to}"
        try:
            report = reconciliation_report(date_from=date_from, date_to=date_to)
        except ReportRangeError as exc:
            raise CommandError(str(exc)) from exc
        except GatewayError as exc:
            raise CommandError(
                _("Could not read Stripe's records for %(day)s: %(error)s")
                % {"day": span, "error": exc.message}
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
                    "Stripe %(charges)d charges, gross %(s_gross)s, refunds %(s_refunds)s, fees %(fees)s, "
                    "net %(s_net)s"
                )
                % {
                    "currency": row.currency,
                    "payments": row.our_payments,
                    "gross": row.our_gross_money,
                    "refunds": row.our_refunds_money,
                    "net": row.our_net_money,
                    "charges": row.stripe_charges,
                    "s_gross": row.stripe_gross_money,
                    "s_refunds": row.stripe_refunds_money,
                    "fees": row.stripe_fees_money,
                    "s_net": row.stripe_net_money,
                }
            )
        if report.is_clean:
            self.stdout.write(_("No mismatches."))
            return
        for mismatch in report.mismatches:
            self.stdout.write(
                _("%(what)s: %(object)s %(ours_id)s / %(stripe_id)s: we have %(ours)s, Stripe has %(stripe)s")
                % {
                    "what": mismatch.label,
                    "object": mismatch.object_label,
                    "ours_id": mismatch.our_id or "-",
                    "stripe_id": mismatch.stripe_id or "-",
                    "ours": mismatch.ours,
                    "stripe": mismatch.stripe,
                }
            )
        count = len(report.mismatches)
        raise CommandError(
            ngettext("%(count)d mismatch with Stripe.", "%(count)d mismatches with Stripe.", count)
            % {"count": count}
        )
