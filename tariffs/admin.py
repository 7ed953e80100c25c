"""Admin of the catalogue: managers set tariffs and their prices here."""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from billing.money import format_money, minor_unit_exponent, to_major_units, to_minor_units
from tariffs.models import PeriodUnit, Tariff

# Fifteen digits keep any currency's amount, in minor units, inside a 64-bit column.
PRICE_MAX_DIGITS = 15


def period_display(unit: str, count: int) -> str:
    """Return a billing period as people say it: "1 month", "12 months", "1 year"."""
    if unit == PeriodUnit.YEAR:
        return ngettext("%(count)d year", "%(count)d years", count) % {"count": count}
    return ngettext("%(count)d month", "%(count)d months", count) % {"count": count}


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


class TariffAdminForm(forms.ModelForm):
    """Take the price in major units ("399.00") and store it in minor units (39900)."""

    price = forms.DecimalField(
        label=_("price"),
        max_digits=PRICE_MAX_DIGITS,
        help_text=_(
            "In major units of the currency, e.g. 399.00. A new price applies to new "
            "subscriptions only: current subscribers keep the price they signed up at."
        ),
    )

    class Meta:
        model = Tariff
        fields = (
            "name",
            "slug",
            "description",
            "price",
            "currency",
            "period_count",
            "period_unit",
            "trial_days",
            "is_active",
            "display_order",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial.setdefault("price", to_major_units(self.instance.amount, self.instance.currency))

    def clean_price(self) -> Decimal:
        price: Decimal = self.cleaned_data["price"]
        if price <= 0:
            raise ValidationError(_("Enter a price above zero."), code="not_positive")
        return price

    def clean_currency(self) -> str:
        code: str = self.cleaned_data["currency"].upper()
        if not (len(code) == 3 and code.isascii() and code.isalpha()):
            raise ValidationError(_("Enter a three-letter ISO 4217 code, e.g. RUB."), code="invalid")
        return code

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned_data = self.cleaned_data
        price, currency = cleaned_data.get("price"), cleaned_data.get("currency")
        if price is None or not currency:
            return cleaned_data
        try:
            # The amount is no form field, so the ModelForm never copies it to the
            # instance: it is set here, where price and currency are both known.
            self.instance.amount = to_minor_units(price, currency)
        except ValueError:
            places = minor_unit_exponent(currency)
            message = ngettext(
                "%(currency)s prices have at most %(places)d decimal place.",
                "%(currency)s prices have at most %(places)d decimal places.",
                places,
            )
            self.add_error(
                "price",
                ValidationError(
                    message, code="too_many_decimals", params={"currency": currency, "places": places}
                ),
            )
        return cleaned_data


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    form = TariffAdminForm
    list_display = (
        "name",
        "slug",
        "price",
        "period",
        "trial_days",
        "is_active",
        "display_order",
    )
    list_filter = ("is_active", "period_unit", CurrencyListFilter)
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    ordering = ("display_order", "id")
    actions = ("activate", "deactivate")
    fieldsets = (
        (None, {"fields": ("name", "slug", "description")}),
        (_("Price"), {"fields": ("price", "currency", "period_count", "period_unit", "trial_days")}),
        (_("Storefront"), {"fields": ("is_active", "display_order")}),
    )

    @admin.display(description=_("price"), ordering="amount")
    def price(self, tariff: Tariff) -> str:
        return format_money(tariff.amount, tariff.currency)

    @admin.display(description=_("period"))
    def period(self, tariff: Tariff) -> str:
        return period_display(tariff.period_unit, tariff.period_count)

    @admin.action(description=_("Activate selected %(verbose_name_plural)s"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Tariff]) -> None:
        count = self._set_active(request, queryset, active=True)
        message = ngettext("%(count)d tariff was activated.", "%(count)d tariffs were activated.", count) % {
            "count": count
        }
        self.message_user(request, message, messages.SUCCESS)

    @admin.action(description=_("Deactivate selected %(verbose_name_plural)s"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Tariff]) -> None:
        count = self._set_active(request, queryset, active=False)
        message = ngettext(
            "%(count)d tariff was deactivated.", "%(count)d tariffs were deactivated.", count
        ) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)

    def _set_active(self, request: HttpRequest, queryset: QuerySet[Tariff], *, active: bool) -> int:
        """Flip the tariffs that are not in that state yet, and record each in their history."""
        tariffs = list(queryset.exclude(is_active=active))
        Tariff.objects.filter(pk__in=[t.pk for t in tariffs]).update(
            is_active=active, updated_at=timezone.now()
        )
        # Stored untranslated, as the admin stores its own change messages.
        with translation.override(None):
            label = str(Tariff._meta.get_field("is_active").verbose_name)
        for tariff in tariffs:
            self.log_change(request, tariff, [{"changed": {"fields": [label]}}])
        return len(tariffs)
