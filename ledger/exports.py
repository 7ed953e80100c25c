"""Accounting's export of the journal: every posting of the entries of a date range, as CSV or XLSX.

One row per posting, with its entry's columns repeated, so a sheet can be filtered by entry,
account or kind and summed per currency. The range is whole UTC days of the entries' book date
(`effective_at`), both ends included. Files are written by the payments exports' formats
(payments/exports.py): CSV as text (ISO 8601 moments, "399.00"), XLSX as cells Excel can sum
(numbers with the currency's decimals, real date-times). Column names are stable identifiers,
never translated.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from django import forms
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from tablib import Dataset

from core import clock
from core.days import utc_midnight
from core.money import to_major_units
from core.replica import replica_reads
from ledger.models import Posting
from payments.exports import EXPORT_CHUNK_SIZE, SpreadsheetCSV, SpreadsheetXLSX, day_range_check

SHEET_TITLE = "Journal"
HEADERS = (
    "entry_id",
    "effective_at_utc",
    "recorded_at_utc",
    "kind",
    "source",
    "payment_id",
    "memo",
    "account",
    "currency",
    "amount_minor",
    "debit",
    "credit",
)
FORMATS: dict[str, type[SpreadsheetCSV] | type[SpreadsheetXLSX]] = {
    "csv": SpreadsheetCSV,
    "xlsx": SpreadsheetXLSX,
}


class JournalExportForm(forms.Form):
    """The range of UTC days (both included) and the file format of an export of the journal."""

    date_from = forms.DateField(label=_("from (UTC day)"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(
        label=_("to (UTC day, included)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    file_format = forms.ChoiceField(
        label=_("format"), choices=[("csv", "CSV"), ("xlsx", "XLSX")], initial="xlsx"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        today = clock.now().astimezone(UTC).date()
        # The current month so far: the export an accountant most often wants.
        self.fields["date_from"].initial = today.replace(day=1)
        self.fields["date_to"].initial = today

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        day_range_check(self, cleaned)
        return cleaned


@replica_reads()
def journal_dataset(*, date_from: date, date_to: date) -> Dataset:
    """Return every posting of the entries effective in the UTC days [date_from, date_to], in book order.

    Read from the replica when there is one (core.replica).
    """
    start, end = utc_midnight(date_from), utc_midnight(date_to + timedelta(days=1))
    postings = (
        Posting.objects.filter(effective_at__gte=start, effective_at__lt=end)
        .select_related("entry", "account")
        .order_by("effective_at", "entry_id", "id")
    )
    dataset = Dataset(headers=list(HEADERS), title=SHEET_TITLE)
    for posting in postings.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        entry = posting.entry
        dataset.append(
            [
                entry.pk,
                entry.effective_at,
                entry.created_at,
                entry.kind,
                entry.source,
                str(entry.payment_id) if entry.payment_id else None,
                entry.memo,
                posting.account.code,
                posting.currency,
                posting.amount,
                # Debit and credit in major units, each blank on the other side (a sheet sums them).
                to_major_units(posting.amount, posting.currency) if posting.amount > 0 else None,
                to_major_units(-posting.amount, posting.currency) if posting.amount < 0 else None,
            ]
        )
    return dataset


def journal_export_response(*, date_from: date, date_to: date, file_format: str) -> HttpResponse:
    """Return the journal of the range as a file download in `file_format` ("csv" or "xlsx")."""
    export_format = FORMATS[file_format]()
    content = export_format.export_data(journal_dataset(date_from=date_from, date_to=date_to))
    response = HttpResponse(content, content_type=export_format.get_content_type())
    filename = f"journal-{date_from.isoformat()}-{date_to.isoformat()}.{export_format.get_extension()}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
