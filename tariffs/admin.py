"""Admin of the catalogue: managers set tariffs, their prices and promo codes here."""

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from billing.money import format_money, minor_unit_exponent, to_major_units, to_minor_units
from tariffs.models import (
    PROMO_CODE_REGEX,
    PeriodUnit,
    PromoCode,
    PromoDuration,
    PromoKind,
    PromoRedemption,
    Tariff,
)
from tariffs.selectors import promo_code_normalize
from tariffs.services import tariff_set_active

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
        tariffs = tariff_set_active(tariffs=queryset, active=active)
        # Stored untranslated, as the admin stores its own change messages.
        with translation.override(None):
            label = str(Tariff._meta.get_field("is_active").verbose_name)
        for tariff in tariffs:
            self.log_change(request, tariff, [{"changed": {"fields": [label]}}])
        return len(tariffs)


def promo_duration_display(periods: int | None) -> str:
    """Return how long a discount lasts: "first period", "3 periods", "every period"."""
    if periods is None:
        return str(_("every period"))
    if periods == 1:
        return str(_("first period"))
    return ngettext("first %(count)d period", "first %(count)d periods", periods) % {"count": periods}


class PromoCodeAdminForm(forms.ModelForm):
    """Take a fixed discount in major units ("100.00") and keep only the fields its kind uses."""

    amount = forms.DecimalField(
        label=_("amount off"),
        max_digits=PRICE_MAX_DIGITS,
        required=False,
        help_text=_("For a fixed amount off: in major units of the currency, e.g. 100.00."),
    )

    class Meta:
        model = PromoCode
        fields = (
            "code",
            "description",
            "is_active",
            "kind",
            "percent_off",
            "amount",
            "currency",
            "duration",
            "duration_periods",
            "tariffs",
            "valid_from",
            "valid_until",
            "max_redemptions",
            "max_per_account",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.amount_off is not None:
            self.initial.setdefault(
                "amount", to_major_units(self.instance.amount_off, self.instance.currency)
            )

    def clean_code(self) -> str:
        code: str = promo_code_normalize(self.cleaned_data["code"])
        if not re.fullmatch(PROMO_CODE_REGEX, code):
            raise ValidationError(
                _("Use 3 to 64 letters (A-Z), digits, '-' or '_', starting with a letter or digit."),
                code="invalid",
            )
        return code

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).strip().upper()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("kind") == PromoKind.PERCENT:
            self._clean_percent(data)
        elif data.get("kind") == PromoKind.FIXED:
            self._clean_fixed(data)
        if data.get("duration") == PromoDuration.REPEATING:
            if not data.get("duration_periods"):
                self.add_error("duration_periods", _("Enter for how many periods the discount lasts."))
        else:
            data["duration_periods"] = None
        valid_from, valid_until = data.get("valid_from"), data.get("valid_until")
        if valid_from and valid_until and valid_until <= valid_from:
            self.add_error("valid_until", _("The end must come after the start."))
        return data

    def _clean_percent(self, data: dict[str, Any]) -> None:
        percent = data.get("percent_off")
        if percent is None or not 1 <= percent <= 100:
            self.add_error("percent_off", _("Enter a percent from 1 to 100."))
        data["currency"] = ""
        self.instance.amount_off = None

    def _clean_fixed(self, data: dict[str, Any]) -> None:
        data["percent_off"] = None
        amount, currency = data.get("amount"), data.get("currency")
        if not (currency and len(currency) == 3 and currency.isascii() and currency.isalpha()):
            self.add_error(
                "currency", _("A fixed amount needs its three-letter ISO 4217 currency, e.g. RUB.")
            )
            return
        if amount is None or amount <= 0:
            self.add_error("amount", _("Enter an amount above zero."))
            return
        try:
            # The amount in minor units is no form field: it is set here, where the
            # currency is known, as the tariff form does with its price.
            self.instance.amount_off = to_minor_units(amount, currency)
        except ValueError:
            places = minor_unit_exponent(currency)
            message = ngettext(
                "%(currency)s amounts have at most %(places)d decimal place.",
                "%(currency)s amounts have at most %(places)d decimal places.",
                places,
            )
            self.add_error(
                "amount",
                ValidationError(
                    message, code="too_many_decimals", params={"currency": currency, "places": places}
                ),
            )


@admin.register(PromoCode)
class PromoCodeAdmin(admin.ModelAdmin):
    form = PromoCodeAdminForm
    list_display = ("code", "discount", "lasts", "valid_from", "valid_until", "uses", "is_active")
    list_filter = ("is_active", "kind", "duration", "tariffs")
    search_fields = ("code",)
    search_help_text = _("Code, in any case.")
    filter_horizontal = ("tariffs",)
    readonly_fields = ("uses", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("code", "description", "is_active")}),
        (
            _("Discount"),
            {
                "fields": ("kind", "percent_off", "amount", "currency", "duration", "duration_periods"),
                "description": _(
                    "Changes apply to new redemptions only: viewers keep the discount they subscribed with."
                ),
            },
        ),
        (_("Where and when"), {"fields": ("tariffs", "valid_from", "valid_until")}),
        (_("Limits"), {"fields": ("max_redemptions", "max_per_account", "uses")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("discount"))
    def discount(self, promo: PromoCode) -> str:
        return promo.discount_display

    @admin.display(description=_("lasts"))
    def lasts(self, promo: PromoCode) -> str:
        return promo_duration_display(promo.periods)

    @admin.display(description=_("uses"), ordering="times_redeemed")
    def uses(self, promo: PromoCode) -> str:
        if promo.pk is None:
            return "-"
        limit = "∞" if promo.max_redemptions is None else str(promo.max_redemptions)
        url = reverse("admin:tariffs_promoredemption_changelist") + f"?promo__id__exact={promo.pk}"
        return format_html('<a href="{}">{} / {}</a>', url, promo.times_redeemed, limit)


@admin.register(PromoRedemption)
class PromoRedemptionAdmin(admin.ModelAdmin):
    """Read-only: redemptions are written by subscribes (tariffs.services), never by hand."""

    list_display = ("created_at", "promo", "account", "subscription_link", "discount", "lasts", "released_at")
    list_filter = ("promo",)
    list_select_related = ("promo", "account", "subscription")
    search_fields = ("promo__code", "account__user_id", "account__email")
    search_help_text = _("Code, cinema user id or email.")
    # The table may grow large: no second COUNT(*) of all of it on every page.
    show_full_result_count = False
    fields = (
        "promo",
        "account",
        "subscription_link",
        "discount",
        "lasts",
        "created_at",
        "released_at",
    )
    readonly_fields = fields

    @admin.display(description=_("subscription"))
    def subscription_link(self, redemption: PromoRedemption) -> str:
        url = reverse("admin:billing_subscription_change", args=[redemption.subscription_id])
        return format_html('<a href="{}">{}</a>', url, redemption.subscription_id)

    @admin.display(description=_("discount"))
    def discount(self, redemption: PromoRedemption) -> str:
        return redemption.discount_display

    @admin.display(description=_("lasts"))
    def lasts(self, redemption: PromoRedemption) -> str:
        return promo_duration_display(redemption.periods)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
