"""Recognise the revenue earned on a UTC day: what the daily job does, for any day that is over."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from core.days import day_argument, utc_yesterday
from core.money import format_money
from ledger.services.recognition import RecognitionDayNotOver, revenue_recognize


class Command(BaseCommand):
    help = (
        "Move the revenue earned on a UTC day (--day, default yesterday on the billing clock) from "
        "deferred revenue to revenue, one entry per payment, and print what was posted. Running a day "
        "again, or a day before one already run, posts nothing: a day's run takes everything earned "
        "through it. After days the daily job missed, run them oldest first, so that each day's "
        "revenue is posted on its own day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", type=day_argument, help="The UTC day, YYYY-MM-DD (default: yesterday).")

    def handle(self, *args: Any, **options: Any) -> None:
        day = options["day"] or utc_yesterday()
        try:
            result = revenue_recognize(day=day)
        except RecognitionDayNotOver as exc:
            raise CommandError(
                _("%(day)s is not over yet: revenue is recognised for days that are over.")
                % {"day": day.isoformat()}
            ) from exc
        self.stdout.write(
            _("Revenue recognised for %(day)s (UTC): %(entries)d entries, %(plans)d payments looked at.")
            % {"day": day.isoformat(), "entries": result.entries, "plans": result.plans}
        )
        for currency, amount in sorted(result.recognized.items()):
            self.stdout.write(f"{currency}: {format_money(amount, currency)}")
