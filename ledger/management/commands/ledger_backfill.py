"""Post the payments, refunds and recognition plans already in the database that the books lack."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _

from core.days import utc_yesterday
from core.money import format_money
from ledger.services.backfill import BackfillResult, ledger_backfill, recognition_catch_up


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Post every paid payment's capture, recognition plan (stretched by its goodwill extensions) and "
        "refunded amount that the books lack, in batches, under each payment's lock; then recognise "
        "the revenue earned so far month by month, each month on its last day, through yesterday "
        "(unless --no-recognize: the daily job then posts it all on its next day). Running it again "
        "posts nothing twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=_positive, default=500, help="Payments per transaction (default 500)."
        )
        parser.add_argument(
            "--no-recognize",
            action="store_true",
            help="Leave the revenue earned so far to the daily recognition job.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]

        def progress(result: BackfillResult) -> None:
            if verbosity > 1:
                self.stdout.write(_("… %(examined)d paid payments examined.") % {"examined": result.examined})

        result = ledger_backfill(batch_size=options["batch_size"], progress=progress)
        self.stdout.write(
            _(
                "%(examined)d paid payments examined: %(captures)d captures, %(plans)d recognition plans "
                "(%(extensions)d goodwill extensions) and %(refunds)d refund entries posted."
            )
            % {
                "examined": result.examined,
                "captures": result.captures,
                "plans": result.plans,
                "extensions": result.extensions,
                "refunds": result.refunds,
            }
        )
        if options["no_recognize"]:
            return
        through = utc_yesterday()
        recognized: dict[str, int] = {}
        entries = 0
        for run in recognition_catch_up(through=through):
            entries += run.entries
            for currency, amount in run.recognized.items():
                recognized[currency] = recognized.get(currency, 0) + amount
        self.stdout.write(
            _("Revenue recognised through %(day)s (UTC): %(entries)d entries.")
            % {"day": through.isoformat(), "entries": entries}
        )
        for currency, amount in sorted(recognized.items()):
            self.stdout.write(f"{currency}: {format_money(amount, currency)}")
