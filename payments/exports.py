"""Accounting's exports of payments and refunds (django-import-export): CSV and XLSX, export only.

Every export covers a date range the accountant picks in the export form (required, whole UTC
days, both ends included), on top of whatever the changelist's filters and search already
narrowed it to. Rows are read with the related rows they print joined in (no query per row)
and streamed from the database in chunks (`QuerySet.iterator`), so a month of a million
payments is a handful of queries.

Column names are stable snake_case identifiers, not translated labels: accountants' sheets and
scripts read them by name whatever language the admin is shown in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import ExportForm

from billing.days import FIRST_DAY, LAST_DAY, utc_day_range, utc_midnight
from billing.money import to_major_units
from payments.models import Payment, Refund

EXPORT_FORMATS = [CSV, XLSX]
# Rows fetched per round trip while streaming an export.
EXPORT_CHUNK_SIZE = 2000


def utc_iso(value: datetime | None) -> str:
    """Return a moment as ISO 8601 in UTC ("2026-11-22T07:41:00+00:00"), or "" for none."""
    return value.astimezone(UTC).isoformat() if value is not None else ""


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
        today = timezone.now().astimezone(UTC).date()
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
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        for name, day in (("date_from", start), ("date_to", end)):
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                self.add_error(
                    name,
                    _("Choose a day between %(first)s and %(last)s.")
                    % {"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
                )
                return cleaned
        if start and end and end < start:
            self.add_error("date_to", _("The end of the range must not come before its start."))
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


class _RangeResource(resources.ModelResource):
    """A resource that exports only the range of its export form, with its related rows joined."""

    related: tuple[str, ...] = ()

    def filter_export(self, queryset: QuerySet[Any], **kwargs: Any) -> QuerySet[Any]:
        form = kwargs.get("export_form")
        if not isinstance(form, DateRangeExportForm) or not form.is_valid():
            # No export without its range: a form-less call (skip_export_form) would otherwise
            # dump the whole table.
            return queryset.none()
        return queryset.filter(**form.date_filter()).select_related(*self.related)


class PaymentResource(_RangeResource):
    """One row per payment, money in minor units and as a decimal string of major units."""

    related = ("subscription__account", "subscription__tariff")

    id = fields.Field(attribute="id", column_name="id")
    created_at = fields.Field(column_name="created_at_utc")
    paid_at = fields.Field(column_name="paid_at_utc")
    user_id = fields.Field(attribute="subscription__account__user_id", column_name="cinema_user_id")
    tariff = fields.Field(attribute="subscription__tariff__slug", column_name="tariff")
    kind = fields.Field(attribute="kind", column_name="kind")
    status = fields.Field(attribute="status", column_name="status")
    amount = fields.Field(attribute="amount", column_name="amount_minor")
    currency = fields.Field(attribute="currency", column_name="currency")
    amount_major = fields.Field(column_name="amount")
    refunded_amount = fields.Field(attribute="refunded_amount", column_name="refunded_minor")
    refunded_major = fields.Field(column_name="refunded")
    checkout_session = fields.Field(
        attribute="stripe_checkout_session_id", column_name="stripe_checkout_session_id"
    )
    payment_intent = fields.Field(
        attribute="stripe_payment_intent_id", column_name="stripe_payment_intent_id"
    )
    charge = fields.Field(attribute="stripe_charge_id", column_name="stripe_charge_id")

    class Meta:
        model = Payment
        fields = (
            "id",
            "created_at",
            "paid_at",
            "user_id",
            "tariff",
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
        )
        export_order = fields
        chunk_size = EXPORT_CHUNK_SIZE

    @classmethod
    def get_display_name(cls) -> str:
        return str(_("payments"))

    def dehydrate_created_at(self, payment: Payment) -> str:
        return utc_iso(payment.created_at)

    def dehydrate_paid_at(self, payment: Payment) -> str:
        return utc_iso(payment.paid_at)

    def dehydrate_amount_major(self, payment: Payment) -> str:
        return str(to_major_units(payment.amount, payment.currency))

    def dehydrate_refunded_major(self, payment: Payment) -> str:
        return str(to_major_units(payment.refunded_amount, payment.currency))


class RefundResource(_RangeResource):
    """One row per refund, with the payment it returns money from and who asked and approved."""

    related = ("payment__subscription__account", "payment__subscription__tariff", "created_by", "approved_by")

    id = fields.Field(attribute="id", column_name="id")
    created_at = fields.Field(column_name="created_at_utc")
    succeeded_at = fields.Field(column_name="succeeded_at_utc")
    payment = fields.Field(attribute="payment_id", column_name="payment_id")
    user_id = fields.Field(attribute="payment__subscription__account__user_id", column_name="cinema_user_id")
    tariff = fields.Field(attribute="payment__subscription__tariff__slug", column_name="tariff")
    status = fields.Field(attribute="status", column_name="status")
    reason = fields.Field(attribute="reason", column_name="reason")
    amount = fields.Field(attribute="amount", column_name="amount_minor")
    currency = fields.Field(attribute="currency", column_name="currency")
    amount_major = fields.Field(column_name="amount")
    refund_id = fields.Field(attribute="stripe_refund_id", column_name="stripe_refund_id")
    payment_intent = fields.Field(
        attribute="payment__stripe_payment_intent_id", column_name="stripe_payment_intent_id"
    )
    charge = fields.Field(attribute="payment__stripe_charge_id", column_name="stripe_charge_id")
    created_by = fields.Field(column_name="created_by")
    approved_by = fields.Field(column_name="approved_by")

    class Meta:
        model = Refund
        fields = (
            "id",
            "created_at",
            "succeeded_at",
            "payment",
            "user_id",
            "tariff",
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
        )
        export_order = fields
        chunk_size = EXPORT_CHUNK_SIZE

    @classmethod
    def get_display_name(cls) -> str:
        return str(_("refunds"))

    def dehydrate_created_at(self, refund: Refund) -> str:
        return utc_iso(refund.created_at)

    def dehydrate_succeeded_at(self, refund: Refund) -> str:
        return utc_iso(refund.succeeded_at)

    def dehydrate_amount_major(self, refund: Refund) -> str:
        return str(to_major_units(refund.amount, refund.currency))

    def dehydrate_created_by(self, refund: Refund) -> str:
        return _username(refund.created_by)

    def dehydrate_approved_by(self, refund: Refund) -> str:
        return _username(refund.approved_by)


def _username(user: Model | None) -> str:
    return user.get_username() if user is not None else ""  # type: ignore[attr-defined]
