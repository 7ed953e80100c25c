"""Check that the books balance and agree with the payments, refunds and recognition plans."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ledger.services.checks import LedgerCheck, ledger_check


class Command(BaseCommand):
    help = (
        "Verify that every journal entry balances per currency, that every captured payment is posted "
        "once with its amount and its refunded amount posted as refunded, that each payment's "
        "recognised and deferred revenue and the unearned part of its refunds add up to its amount, "
        "and that no entry is an orphan. Exits with an error on any mismatch, so a scheduler can alert. "
        "With --json, prints one JSON object instead of text."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = ledger_check()
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json(), sort_keys=True))
        else:
            self._print(result)
        if not result.clean:
            # With --json, stdout stays the one object; the reason goes to stderr with the exit code.
            raise CommandError(
                ngettext(
                    "The ledger check found %(count)d mismatch.",
                    "The ledger check found %(count)d mismatches.",
                    max(result.mismatch_count, 1),
                )
                % {"count": max(result.mismatch_count, 1)}
            )

    def _print(self, result: LedgerCheck) -> None:
        self.stdout.write(
            _("%(entries)d entries, %(unbalanced)d unbalanced.")
            % {"entries": result.entries, "unbalanced": result.unbalanced_entries}
        )
        for currency, codes in result.balances.items():
            self.stdout.write(_("Balances in %(currency)s (debit +):") % {"currency": currency})
            for code, amount in codes.items():
                self.stdout.write(f"  {code:<32} {amount:>16}")
        if result.clean:
            self.stdout.write(_("The books balance and agree with the payments."))
            return
        for mismatch in result.mismatches:
            self.stdout.write(
                _("%(what)s: %(subject)s %(currency)s: expected %(expected)s, found %(found)s")
                % {
                    "what": mismatch.label,
                    "subject": mismatch.subject,
                    "currency": mismatch.currency,
                    "expected": "-" if mismatch.expected is None else mismatch.expected,
                    "found": "-" if mismatch.found is None else mismatch.found,
                }
            )
        if result.mismatch_count > len(result.mismatches):
            self.stdout.write(
                _("… and %(more)d more.") % {"more": result.mismatch_count - len(result.mismatches)}
            )
