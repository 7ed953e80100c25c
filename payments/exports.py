"""Accounting's exports of payments and refunds (django-import-export): CSV and XLSX, export only.

Every export covers a date range the accountant picks in the export form (required, whole UTC
days, both ends included), on top of whatever the changelist's filters and search already
narrowed it to. Rows are read with the related rows they print joined in (no query per row)
and streamed from the database in chunks (`QuerySet.iterator`), so a month of a million
payments is a handful of queries.

Column names (and the XLSX sheet names) are stable identifiers, not translated labels:
accountants' sheets and scripts read them by name whatever language the admin is shown in.

The resources hand every value over as what it is (an int, a Decimal of major units quantized
to the currency's exponent, an aware UTC datetime, text), and each file format writes it the
way its readers need: CSV as text (ISO 8601 moments, "399.00"), XLSX as cells Excel can sum and
sort (numbers with the currency's decimals, real date-times; see `SpreadsheetXLSX`).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django import forms
from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import ExportForm
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from tablib import Dataset

from core import clock
from core.days import FIRST_DAY, LAST_DAY, utc_day_range, utc_midnight
from core.money import to_major_units
from core.replica import replica_reads
from payments.models import Payment, Refund

# Rows fetched per round trip while streaming an export.
EXPORT_CHUNK_SIZE = 2000
# How XLSX shows moments: the cell holds the UTC date-time (the column name says UTC).
XLSX_DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
XLSX_DATE_FORMAT = "yyyy-mm-dd"
# Rows looked at to size the XLSX columns: enough to see every kind of value, cheap for a month.
XLSX_WIDTH_SAMPLE = 200


def utc_iso(value: datetime | None) -> str:
    """Return a moment as ISO 8601 in UTC ("2026-11-22T07:41:00+00:00"), or "" for none."""
    return value.astimezone(UTC).isoformat() if value is not None else ""


def xlsx_number_format(value: Decimal) -> str:
    """Return the Excel number format showing exactly the decimals of a major-units amount.

    `to_major_units` quantizes to the currency's exponent, so 399.00 RUB gets "#,##0.00" and
    500 JPY gets "#,##0".
    """
    exponent = value.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return "#,##0." + "0" * decimals if decimals else "#,##0"


class NativeWidget(widgets.Widget):
    """Hand a value to the file format as it is (ids as text): the format decides how to write it."""

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> Any:
        return str(value) if isinstance(value, UUID) else value


class SpreadsheetCSV(CSV):
    """CSV as before: moments in ISO 8601 UTC, amounts as their decimal text, nothing as ""."""

    def export_data(self, dataset: Dataset, **kwargs: Any) -> str:
        stream = io.StringIO()
        writer = csv.writer(stream)
        writer.writerow(dataset.headers)
        for row in dataset:
            writer.writerow([_csv_text(value) for value in row])
        return stream.getvalue()


class SpreadsheetXLSX(XLSX):
    """XLSX that Excel can add up: one named sheet, numbers, date-times, and text that stays text.

    Amounts (Decimal) are numeric cells formatted with their currency's decimals; moments are
    date-time cells holding the UTC time without a zone (Excel has none); text is always a text
    cell, so a value such as "=1+1" in an email is never run as a formula. Characters a sheet
    cannot hold (control characters) are dropped.
    """

    def export_data(self, dataset: Dataset, **kwargs: Any) -> bytes:
        book = Workbook(write_only=True)
        sheet = book.create_sheet(title=dataset.title or "Sheet")
        sheet.freeze_panes = "A2"
        _size_columns(sheet, dataset)
        bold = Font(bold=True)
        header = []
        for name in dataset.headers:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        for row in dataset:
            sheet.append([_xlsx_cell(sheet, value) for value in row])
        stream = io.BytesIO()
        book.save(stream)
        return stream.getvalue()


EXPORT_FORMATS = [SpreadsheetCSV, SpreadsheetXLSX]


def _csv_text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc_iso(value)
    return value


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    if isinstance(value, Decimal):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = xlsx_number_format(value)
        return cell
    if isinstance(value, datetime):
        naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        cell = WriteOnlyCell(sheet, value=naive)
        cell.number_format = XLSX_DATETIME_FORMAT
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = XLSX_DATE_FORMAT
        return cell
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("", value)
        if not text.startswith("="):
            return text or None  # a blank cell, not an empty text one
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"  # written as text, never as a formula
        return cell
    return value


def _size_columns(sheet: WriteOnlyWorksheet, dataset: Dataset) -> None:
    """Set each column wide enough for its header and the first rows (before any row is written)."""
    sample = dataset[:XLSX_WIDTH_SAMPLE] if len(dataset) else []
    for index, name in enumerate(dataset.headers, start=1):
        longest = len(str(name))
        for row in sample:
            value = row[index - 1]
            shown = XLSX_DATETIME_FORMAT if isinstance(value, datetime) else _csv_text(value)
            longest = max(longest, len(str(shown)))
        sheet.column_dimensions[get_column_letter(index)].width = min(longest, 60) + 2


class DateRangeExportForm(ExportForm):
    """The export form with the date range it must be limited to (UTC days, both included)."""

    date_from = forms.DateField(
        label=_("from (UTC day)"), widget=forms.DateInput(attrs={"type": "date"}), required=True
    )
    date_to = forms.DateField(
        label=_("to (UTC day, included)"), widget=forms.DateInput(attrs={"type": "date"}), required=True
    )
    # The model fields a range may apply to, the first being the default.
    date_fields: tuple[tuple[str, Any], ...] = (("created_at", _("created")),)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        today = clock.now().astimezone(UTC).date()
        # Defaults to the current month so far: the export an accountant most often wants.
        self.fields["date_from"].initial = today.replace(day=1)
        self.fields["date_to"].initial = today
        if len(self.date_fields) > 1:
            self.fields["date_field"] = forms.ChoiceField(
                label=_("dates of"),
                choices=self.date_fields,
                initial=self.date_fields[0][0],
                # Left out (a script posting the form), the range applies to the first choice.
                required=False,
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        day_range_check(self, cleaned)
        return cleaned

    def date_filter(self) -> dict[str, datetime]:
        """Return the queryset filter of the chosen range, as half-open UTC bounds."""
        name = self.cleaned_data.get("date_field") or self.date_fields[0][0]
        start = utc_midnight(self.cleaned_data["date_from"])
        end = utc_day_range(self.cleaned_data["date_to"])[1]
        return {f"{name}__gte": start, f"{name}__lt": end}


class PaymentExportForm(DateRangeExportForm):
    date_fields = (("paid_at", _("payment (paid at)")), ("created_at", _("creation (created at)")))


class RefundExportForm(DateRangeExportForm):
    date_fields = (
        ("succeeded_at", _("success (succeeded at)")),
        ("created_at", _("creation (created at)")),
    )


def _field(attribute: str | None, column_name: str) -> fields.Field:
    """Return an export column handing its value over as it is (see NativeWidget)."""
    return fields.Field(attribute=attribute, column_name=column_name, widget=NativeWidget())


class _RangeResource(resources.ModelResource):
    """A resource that exports only the range of its export form, with its related rows joined."""

    related: tuple[str, ...] = ()
    # The XLSX sheet's name: a fixed identifier, like the column names.
    sheet_title = ""

    def export(self, queryset: QuerySet[Any] | None = None, **kwargs: Any) -> Dataset:
        """Return the rows of the export, read from the replica when there is one (core.replica)."""
        with replica_reads():
            return super().export(queryset, **kwargs)

    def after_export(self, queryset: QuerySet[Any], dataset: Dataset, **kwargs: Any) -> None:
        dataset.title = self.sheet_title

    def filter_export(self, queryset: QuerySet[Any], **kwargs: Any) -> QuerySet[Any]:
        form = kwargs.get("export_form")
        if not isinstance(form, DateRangeExportForm) or not form.is_valid():
            # No export without its range: a form-less call (skip_export_form) would otherwise
            # dump the whole table.
            return queryset.none()
        return queryset.filter(**form.date_filter()).select_related(*self.related)


class PaymentResource(_RangeResource):
    """One row per payment, money in minor units and as a number of major units."""

    related = ("subscription__account", "subscription__tariff")
    sheet_title = "Payments"

    id = _field("id", "id")
    created_at = _field("created_at", "created_at_utc")
    paid_at = _field("paid_at", "paid_at_utc")
    user_id = _field("subscription__account__user_id", "cinema_user_id")
    email = _field("subscription__account__email", "email")
    tariff = _field("subscription__tariff__slug", "tariff")
    tariff_name = _field("subscription__tariff__name", "tariff_name")
    kind = _field("kind", "kind")
    status = _field("status", "status")
    amount = _field("amount", "amount_minor")
    currency = _field("currency", "currency")
    amount_major = _field(None, "amount")
    refunded_amount = _field("refunded_amount", "refunded_minor")
    refunded_major = _field(None, "refunded")
    checkout_session = _field("provider_checkout_id", "stripe_checkout_session_id")
    payment_intent = _field("provider_payment_id", "stripe_payment_intent_id")
    charge = _field("provider_charge_id", "stripe_charge_id")
    # Appended, so the columns before keep their places: whose the ids above are (they carry
    # YooKassa's ids for its payments, under the columns' historical names), and YooKassa's
    # fiscal receipt ("canceled": failed to register).
    provider = _field("provider", "provider")
    receipt_status = _field("receipt_registration", "receipt_status")

    class Meta:
        model = Payment
        fields = (
            "id",
            "created_at",
            "paid_at",
            "user_id",
            "email",
            "tariff",
            "tariff_name",
            "kind",
            "status",
            "amount",
            "currency",
            "amount_major",
            "refunded_amount",
            "refunded_major",
            "checkout_session",
            "payment_intent",
            "charge",
            "provider",
            "receipt_status",
        )
        export_order = fields
        chunk_size = EXPORT_CHUNK_SIZE

    @classmethod
    def get_display_name(cls) -> str:
        return str(_("payments"))

    def dehydrate_amount_major(self, payment: Payment) -> Decimal:
        return to_major_units(payment.amount, payment.currency)

    def dehydrate_refunded_major(self, payment: Payment) -> Decimal:
        return to_major_units(payment.refunded_amount, payment.currency)


class RefundResource(_RangeResource):
    """One row per refund, with the payment it returns money from and who asked and approved."""

    related = ("payment__subscription__account", "payment__subscription__tariff", "created_by", "approved_by")
    sheet_title = "Refunds"

    id = _field("id", "id")
    created_at = _field("created_at", "created_at_utc")
    succeeded_at = _field("succeeded_at", "succeeded_at_utc")
    payment = _field("payment_id", "payment_id")
    user_id = _field("payment__subscription__account__user_id", "cinema_user_id")
    email = _field("payment__subscription__account__email", "email")
    tariff = _field("payment__subscription__tariff__slug", "tariff")
    tariff_name = _field("payment__subscription__tariff__name", "tariff_name")
    status = _field("status", "status")
    reason = _field("reason", "reason")
    amount = _field("amount", "amount_minor")
    currency = _field("currency", "currency")
    amount_major = _field(None, "amount")
    refund_id = _field("provider_refund_id", "stripe_refund_id")
    payment_intent = _field("payment__provider_payment_id", "stripe_payment_intent_id")
    charge = _field("payment__provider_charge_id", "stripe_charge_id")
    created_by = _field(None, "created_by")
    approved_by = _field(None, "approved_by")
    provider = _field("provider", "provider")  # appended, as the payments' column

    class Meta:
        model = Refund
        fields = (
            "id",
            "created_at",
            "succeeded_at",
            "payment",
            "user_id",
            "email",
            "tariff",
            "tariff_name",
            "status",
            "reason",
            "amount",
            "currency",
            "amount_major",
            "refund_id",
            "payment_intent",
            "charge",
            "created_by",
            "approved_by",
            "provider",
        )
        export_order = fields
        chunk_size = EXPORT_CHUNK_SIZE

    @classmethod
    def get_display_name(cls) -> str:
        return str(_("refunds"))

    def dehydrate_amount_major(self, refund: Refund) -> Decimal:
        return to_major_units(refund.amount, refund.currency)

    def dehydrate_created_by(self, refund: Refund) -> str | None:
        return _username(refund.created_by)

    def dehydrate_approved_by(self, refund: Refund) -> str | None:
        return _username(refund.approved_by)


def _username(user: Model | None) -> str | None:
    return user.get_username() if user is not None else None  # type: ignore[attr-defined]


def day_range_check(form: forms.Form, cleaned: dict[str, Any]) -> None:
    """Add the errors of an export form's `date_from`/`date_to`: days out of range, or reversed."""
    start, end = cleaned.get("date_from"), cleaned.get("date_to")
    for name, day in (("date_from", start), ("date_to", end)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            form.add_error(
                name,
                _("Choose a day between %(first)s and %(last)s.")
                % {"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
            )
            return
    if start and end and end < start:
        form.add_error("date_to", _("The end of the range must not come before its start."))
