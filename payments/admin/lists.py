"""What the payment and refund lists share: the tariff filter and Accounting's exports."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin

from payments.exports import EXPORT_FORMATS
from tariffs.models import Tariff


class TariffListFilter(admin.SimpleListFilter):
    """Filter by the tariff subscribed to, offering the small tariff table's entries."""

    title = _("tariff")
    parameter_name = "tariff"
    # The path from the filtered model to its subscription's tariff id.
    tariff_path = "subscription__tariff_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), slug) for pk, slug in Tariff.objects.order_by("slug").values_list("pk", "slug")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        # isdigit() alone lets through digits int() refuses, such as "²".
        if value and value.isascii() and value.isdigit():
            return queryset.filter(**{self.tariff_path: int(value)})
        return queryset


class RefundTariffListFilter(TariffListFilter):
    tariff_path = "payment__subscription__tariff_id"


class ExportAdminMixin(ExportMixin):
    """CSV and XLSX exports for a chosen date range, for holders of `export_<model>` only.

    The permission code is set by IMPORT_EXPORT_EXPORT_PERMISSION_CODE (config/settings/base.py);
    import is never offered (ExportMixin has none).
    """

    export_formats = EXPORT_FORMATS
    import_export_change_list_template = "admin/payments/change_list_export.html"
