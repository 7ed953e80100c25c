"""Admin of tariffs: managers set their prices and put them on or off the storefront."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.money import format_money
from tariffs.admin.confirmation import CONFIRM_FIELD, ConfirmChangesMixin
from tariffs.admin.display import period_display, price_in_words
from tariffs.admin.filters import CurrencyListFilter
from tariffs.admin.forms import TariffAdminForm
from tariffs.models import PROVIDER_NAMES, Tariff
from tariffs.services import tariff_save, tariff_set_active


def tariff_terms(tariff: Tariff) -> dict[str, Any]:
    """Return what a viewer pays for a tariff and whether they can subscribe to it."""
    return {
        "amount": tariff.amount,
        "currency": tariff.currency,
        "period_unit": tariff.period_unit,
        "period_count": tariff.period_count,
        "is_active": tariff.is_active,
    }


def terms_price_in_words(terms: dict[str, Any]) -> str:
    """Return the price of a tariff's terms (`tariff_terms`) with its period, in words."""
    return price_in_words(terms["amount"], terms["currency"], terms["period_unit"], terms["period_count"])


def storefront_notice(tariff: Tariff) -> str:
    """Return what confirming puts a tariff on the storefront says: its name and price."""
    return _("“%(name)s” goes on the storefront at once at %(price)s: viewers can subscribe to it.") % {
        "name": tariff.name,
        "price": terms_price_in_words(tariff_terms(tariff)),
    }


@admin.register(Tariff)
class TariffAdmin(ConfirmChangesMixin, admin.ModelAdmin):
    form = TariffAdminForm
    list_display = (
        "name",
        "slug",
        "price",
        "period",
        "trial_days",
        "payment_provider",
        "is_active",
        "display_order",
    )
    list_filter = ("is_active", "period_unit", "provider", CurrencyListFilter)
    search_fields = ("name", "name_ru", "slug", "description", "description_ru")
    prepopulated_fields = {"slug": ("name",)}
    ordering = ("display_order", "id")
    actions = ("activate", "deactivate")
    fieldsets = (
        (None, {"fields": ("name", "slug", "description")}),
        (
            _("In Russian"),
            {
                "fields": ("name_ru", "description_ru"),
                "description": _(
                    "Shown to viewers whose language is Russian: on the storefront, in emails and "
                    "receipts. Left empty, the English text is shown."
                ),
            },
        ),
        (
            _("Price"),
            {"fields": ("price", "currency", "period_count", "period_unit", "trial_days", "provider")},
        ),
        (_("Storefront"), {"fields": ("is_active", "display_order")}),
    )

    @admin.display(description=_("price"), ordering="amount")
    def price(self, tariff: Tariff) -> str:
        return format_money(tariff.amount, tariff.currency)

    @admin.display(description=_("payment provider"), ordering="provider")
    def payment_provider(self, tariff: Tariff) -> str:
        name = tariff.payment_provider
        return (
            PROVIDER_NAMES.get(name, name)
            if tariff.provider
            else _("%(name)s (the default)") % {"name": PROVIDER_NAMES.get(name, name)}
        )

    @admin.display(description=_("period"))
    def period(self, tariff: Tariff) -> str:
        return period_display(tariff.period_unit, tariff.period_count)

    def confirm_snapshot(self, obj: Any) -> dict[str, Any]:
        return tariff_terms(obj)

    def changes_to_confirm(self, form: forms.ModelForm, before: dict[str, Any] | None) -> list[str]:
        """Return the price and activation a submission sets, in words, when they change."""
        tariff: Tariff = form.instance
        after = tariff_terms(tariff)
        price = terms_price_in_words(after)
        changes: list[str] = []
        if before is None:
            changes.append(_("New tariff “%(name)s” at %(price)s.") % {"name": tariff.name, "price": price})
        elif {k: v for k, v in before.items() if k != "is_active"} != {
            k: v for k, v in after.items() if k != "is_active"
        }:
            changes.append(
                _(
                    "The price changes from %(was)s to %(price)s. New subscriptions pay the new price; "
                    "current subscribers keep theirs."
                )
                % {"was": terms_price_in_words(before), "price": price}
            )
        if tariff.trial_days and changes:
            changes.append(
                ngettext(
                    "The first %(days)d day is free.", "The first %(days)d days are free.", tariff.trial_days
                )
                % {"days": tariff.trial_days}
            )
        if tariff.is_active and (before is None or not before["is_active"]):
            changes.append(storefront_notice(tariff))
        elif before is None:
            changes.append(gettext("It stays off the storefront until it is activated."))
        return changes

    def save_model(self, request: HttpRequest, obj: Tariff, form: forms.ModelForm, change: bool) -> None:
        tariff_save(tariff=obj)

    @admin.action(description=_("Activate selected %(verbose_name_plural)s"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Tariff]) -> HttpResponse | None:
        if CONFIRM_FIELD not in request.POST:
            to_activate = queryset.filter(is_active=False)
            if to_activate.exists():
                return self._activation_page(request, queryset, to_activate)
        try:
            count = self._set_active(request, queryset, active=True)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return None
        message = ngettext("%(count)d tariff was activated.", "%(count)d tariffs were activated.", count) % {
            "count": count
        }
        self.message_user(request, message, messages.SUCCESS)
        return None

    def _activation_page(
        self, request: HttpRequest, selected: QuerySet[Tariff], to_activate: QuerySet[Tariff]
    ) -> TemplateResponse:
        """Ask to confirm putting tariffs on the storefront, naming each with its price."""
        return self.confirmation_page(
            request,
            changes=[storefront_notice(tariff) for tariff in to_activate],
            posted=[
                ("action", "activate"),
                *((ACTION_CHECKBOX_NAME, str(pk)) for pk in selected.values_list("pk", flat=True)),
            ],
        )

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
