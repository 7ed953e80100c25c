"""Print one UTC day's reconciliation report: totals on both sides and every mismatch with Stripe."""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.days import day_parse, utc_yesterday
from payments.gateways.base import GatewayError
from payments.services.daily_report import reconciliation_report_for_day


def _day(value: str) -> date:
    try:
        return day_parse(value)
    except ValueError as exc:
        raise CommandError(_("Enter the day as YYYY-MM-DD.")) from exc


class Command(BaseCommand):
    help = (
        "Compare our captured payments and succeeded refunds of a UTC day with Stripe's charges, "
        "refunds and balance transactions; print the totals per currency and every mismatch. "
        "Exits with an error when there is a mismatch, so a scheduler can alert on it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", type=_day, help="The UTC day, YYYY-MM-DD (default: yesterday).")

    def handle(self, *args: Any, **options: Any) -> None:
        day = options["day"] or utc_yesterday()
        try:
            report = reconciliation_report_for_day(day=day)
        except GatewayError as exc:
            raise CommandError(
                _("Could not read Stripe's records for %(day)s: %(error)s")
                % {"day": day, "error": exc.message}
            ) from exc
        self.stdout.write(_("Reconciliation report for %(day)s (UTC)") % {"day": day.isoformat()})
        if not report.totals:
            self.stdout.write(_("No money moved on this day, on either side."))
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
