"""Admin of promo codes: the discount, where and when it applies, and how often it may be used."""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tariffs.admin.confirmation import ConfirmChangesMixin
from tariffs.admin.display import promo_duration_display
from tariffs.admin.forms import PromoCodeAdminForm
from tariffs.models import PromoCode, discount_display
from tariffs.services import promo_code_save


def promo_terms(promo: PromoCode) -> dict[str, Any]:
    """Return the discount a code gives: kind, value, currency and how long."""
    return {
        "kind": promo.kind,
        "percent_off": promo.percent_off,
        "amount_off": promo.amount_off,
        "currency": promo.currency,
        "periods": promo.periods,
    }


def discount_in_words(discount: str, periods: int | None) -> str:
    """Return a discount with how long it lasts: "15% off, first 3 periods"."""
    return _("%(discount)s off, %(lasts)s") % {"discount": discount, "lasts": promo_duration_display(periods)}


@admin.register(PromoCode)
class PromoCodeAdmin(ConfirmChangesMixin, admin.ModelAdmin):
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

    def confirm_snapshot(self, obj: Any) -> dict[str, Any]:
        return promo_terms(obj)

    def changes_to_confirm(self, form: forms.ModelForm, before: dict[str, Any] | None) -> list[str]:
        """Return the discount a submission sets, in words, when it is new or changes."""
        promo: PromoCode = form.instance
        if before is not None and before == promo_terms(promo):
            return []
        discount = discount_in_words(promo.discount_display, promo.periods)
        tariffs = [tariff.name for tariff in form.cleaned_data.get("tariffs") or []]
        where = ", ".join(tariffs) if tariffs else _("every tariff")
        if before is None:
            return [
                _("New promo code %(code)s: %(discount)s, on %(where)s.")
                % {"code": promo.code, "discount": discount, "where": where}
            ]
        was = discount_in_words(
            discount_display(
                before["kind"], before["percent_off"] or before["amount_off"] or 0, before["currency"]
            ),
            before["periods"],
        )
        return [
            _("The discount of %(code)s changes from %(was)s to %(discount)s, on %(where)s.")
            % {"code": promo.code, "was": was, "discount": discount, "where": where},
            gettext("Viewers who already used the code keep the discount they subscribed with."),
        ]

    def save_model(self, request: HttpRequest, obj: PromoCode, form: forms.ModelForm, change: bool) -> None:
        promo_code_save(promo=obj, tariffs=form.cleaned_data.get("tariffs") or [])

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Save nothing more: `promo_code_save` has set the code's tariffs with the code."""
