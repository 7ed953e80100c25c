"""List filters the catalogue offers to every admin list that has a currency."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from tariffs.models import Tariff


class CurrencyListFilter(admin.SimpleListFilter):
    """Filter by currency, offering the currencies of the catalogue.

    Every subscription and payment copies its currency from a tariff, so the small
    tariff table lists them without a DISTINCT over a table of millions of rows.
    """

    title = _("currency")
    parameter_name = "currency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        currencies = Tariff.objects.order_by("currency").values_list("currency", flat=True).distinct()
        return [(code, code) for code in currencies]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(currency=self.value())
        return queryset
