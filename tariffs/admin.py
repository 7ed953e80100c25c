"""Admin of the catalogue: managers set tariffs, their prices and promo codes here."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import construct_instance
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.money import format_money
from tariffs.models import PeriodUnit, PromoCode, PromoKind, PromoRedemption, Tariff, discount_display
from tariffs.money_entry import money_entry_format, money_entry_parse
from tariffs.selectors import promo_code_normalize
from tariffs.services import promo_code_clean, promo_code_save, tariff_clean, tariff_save, tariff_set_active


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


MONEY_INPUT_ATTRS = {"inputmode": "decimal", "autocomplete": "off", "size": "16"}

# The name of the button on the confirmation page; a POST without it is asked to confirm.
CONFIRM_FIELD = "_confirmed"


def price_in_words(amount: int, currency: str, unit: str, count: int) -> str:
    """Return a price with its period as people say it: "999.00 RUB every 3 months"."""
    if count == 1:
        every = gettext("every year") if unit == PeriodUnit.YEAR else gettext("every month")
    elif unit == PeriodUnit.YEAR:
        every = ngettext("every %(count)d year", "every %(count)d years", count) % {"count": count}
    else:
        every = ngettext("every %(count)d month", "every %(count)d months", count) % {"count": count}
    return f"{format_money(amount, currency)} {every}"


def _clean_by_service(
    form: forms.ModelForm, service_clean: Callable[[Any], None], renamed: dict[str, str]
) -> None:
    """Check the form's instance by the catalogue's rules (a `*_clean` service), field by field.

    Runs before the ModelForm's own model validation, so that a rule the database also
    holds is reported on its field, in the service's words, rather than as a broken
    constraint. What the service normalises goes back into `cleaned_data`, which the
    ModelForm copies to the instance again. `renamed` maps model fields to form fields.
    """
    if form.errors:
        return  # a field the rules read is missing: its own error says why
    instance = construct_instance(form, form.instance, form._meta.fields, form._meta.exclude)
    try:
        service_clean(instance)
    except ValidationError as error:
        for field, field_errors in error.error_dict.items():
            name = renamed.get(field, field)
            form.add_error(name if name in form.fields else None, field_errors)
    concrete = {field.name for field in instance._meta.concrete_fields}
    for name in list(form.cleaned_data):
        if name in concrete:
            form.cleaned_data[name] = getattr(instance, name)


class TariffAdminForm(forms.ModelForm):
    """Take the price as people type it ("999,00", "1 999.00") and check it by the catalogue's rules."""

    price = forms.CharField(
        label=_("price"),
        widget=forms.TextInput(attrs=MONEY_INPUT_ATTRS),
        help_text=_(
            "In the currency's units, e.g. 999,00 or 999.00; a space may separate thousands "
            "(1 999,00). You confirm the price before it is saved. A new price applies to new "
            "subscriptions only: current subscribers keep the price they signed up at."
        ),
    )

    class Meta:
        model = Tariff
        fields = (
            "name",
            "name_ru",
            "slug",
            "description",
            "description_ru",
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
            self.initial.setdefault("price", money_entry_format(self.instance.amount, self.instance.currency))

    def clean_currency(self) -> str:
        # Upper case before the model's own checks see it; the rules are `tariff_clean`'s.
        return str(self.cleaned_data["currency"]).strip().upper()

    def clean(self) -> dict[str, Any]:
        super().clean()
        price, currency = self.cleaned_data.get("price"), self.cleaned_data.get("currency")
        if price is not None and currency:
            try:
                # The amount is no form field, so the ModelForm never copies it to the
                # instance: it is set here, where price and currency are both known.
                self.instance.amount = money_entry_parse(price, currency.strip())
            except ValidationError as error:
                self.add_error("price", error)
        return self.cleaned_data

    def _post_clean(self) -> None:
        _clean_by_service(self, lambda tariff: tariff_clean(tariff=tariff), {"amount": "price"})
        super()._post_clean()  # type: ignore[misc]  # ModelForm's own hook, missing from the stubs


class ConfirmChangesMixin:
    """Ask to confirm some changes on a page of their own before the admin saves them.

    The confirmation page posts the same data again with CONFIRM_FIELD, as the refund form
    does; the admin then validates and saves it as usual. `changes_to_confirm` says what a
    valid submission would change that needs confirming (nothing: saved at once).
    """

    confirm_template = "admin/tariffs/confirm_changes.html"

    def changes_to_confirm(self, form: forms.ModelForm, before: dict[str, Any] | None) -> list[str]:
        raise NotImplementedError

    def confirm_snapshot(self, obj: Any) -> dict[str, Any]:
        """Return what the confirmation compares a submission with (the stored row's values)."""
        raise NotImplementedError

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST" and CONFIRM_FIELD not in request.POST:
            page = self._confirmation_page(request, object_id)
            if page is not None:
                return page
        return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def _confirmation_page(self, request: HttpRequest, object_id: str | None) -> HttpResponse | None:
        """Return the page asking to confirm a valid submission, or None to let the admin handle it."""
        model_admin: Any = self
        obj = model_admin.get_object(request, unquote(object_id)) if object_id else None
        allowed = (
            model_admin.has_change_permission(request, obj)
            if object_id
            else model_admin.has_add_permission(request)
        )
        # Unknown rows, missing permissions and invalid forms: the admin answers as it does.
        if (object_id and obj is None) or not allowed:
            return None
        before = None if obj is None else self.confirm_snapshot(obj)
        form_class = model_admin.get_form(request, obj, change=obj is not None)
        form = form_class(request.POST, request.FILES, instance=obj)
        if not form.is_valid():
            return None
        changes = [str(change) for change in self.changes_to_confirm(form, before)]
        if not changes:
            return None
        opts = model_admin.model._meta
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": opts,
            "title": _("Please confirm"),
            "original": obj,
            "changes": changes,
            "posted": [
                (name, value)
                for name, values in request.POST.lists()
                if name != "csrfmiddlewaretoken"
                for value in values
            ],
            "confirm_field": CONFIRM_FIELD,
            "action_url": request.get_full_path(),
        }
        return TemplateResponse(request, self.confirm_template, context)


def tariff_terms(tariff: Tariff) -> dict[str, Any]:
    """Return what a viewer pays for a tariff and whether they can subscribe to it."""
    return {
        "amount": tariff.amount,
        "currency": tariff.currency,
        "period_unit": tariff.period_unit,
        "period_count": tariff.period_count,
        "is_active": tariff.is_active,
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
        "is_active",
        "display_order",
    )
    list_filter = ("is_active", "period_unit", CurrencyListFilter)
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
        (_("Price"), {"fields": ("price", "currency", "period_count", "period_unit", "trial_days")}),
        (_("Storefront"), {"fields": ("is_active", "display_order")}),
    )

    @admin.display(description=_("price"), ordering="amount")
    def price(self, tariff: Tariff) -> str:
        return format_money(tariff.amount, tariff.currency)

    @admin.display(description=_("period"))
    def period(self, tariff: Tariff) -> str:
        return period_display(tariff.period_unit, tariff.period_count)

    def confirm_snapshot(self, obj: Any) -> dict[str, Any]:
        return tariff_terms(obj)

    def changes_to_confirm(self, form: forms.ModelForm, before: dict[str, Any] | None) -> list[str]:
        """Return the price and activation a submission sets, in words, when they change."""
        tariff: Tariff = form.instance
        after = tariff_terms(tariff)
        price = price_in_words(tariff.amount, tariff.currency, tariff.period_unit, tariff.period_count)
        changes: list[str] = []
        if before is None:
            changes.append(_("New tariff “%(name)s” at %(price)s.") % {"name": tariff.name, "price": price})
        elif {k: v for k, v in before.items() if k != "is_active"} != {
            k: v for k, v in after.items() if k != "is_active"
        }:
            was = price_in_words(
                before["amount"], before["currency"], before["period_unit"], before["period_count"]
            )
            changes.append(
                _(
                    "The price changes from %(was)s to %(price)s. New subscriptions pay the new price; "
                    "current subscribers keep theirs."
                )
                % {"was": was, "price": price}
            )
        if tariff.trial_days and changes:
            changes.append(
                ngettext(
                    "The first %(days)d day is free.", "The first %(days)d days are free.", tariff.trial_days
                )
                % {"days": tariff.trial_days}
            )
        if tariff.is_active and (before is None or not before["is_active"]):
            changes.append(
                _("“%(name)s” goes on the storefront at once at %(price)s: viewers can subscribe to it.")
                % {"name": tariff.name, "price": price}
            )
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
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Please confirm"),
            "changes": [
                _("“%(name)s” goes on the storefront at once at %(price)s: viewers can subscribe to it.")
                % {
                    "name": tariff.name,
                    "price": price_in_words(
                        tariff.amount, tariff.currency, tariff.period_unit, tariff.period_count
                    ),
                }
                for tariff in to_activate
            ],
            "posted": [
                ("action", "activate"),
                *((ACTION_CHECKBOX_NAME, str(pk)) for pk in selected.values_list("pk", flat=True)),
            ],
            "confirm_field": CONFIRM_FIELD,
            "action_url": request.get_full_path(),
        }
        return TemplateResponse(request, self.confirm_template, context)

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
    """Take a fixed discount as people type it ("100,00") and check the code by the catalogue's rules."""

    amount = forms.CharField(
        label=_("amount off"),
        required=False,
        widget=forms.TextInput(attrs=MONEY_INPUT_ATTRS),
        help_text=_(
            "For a fixed amount off: in the currency's units, e.g. 100,00 or 100.00. It must be "
            "the currency of the tariffs the code applies to."
        ),
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
                "amount", money_entry_format(self.instance.amount_off, self.instance.currency)
            )

    def clean_code(self) -> str:
        # Upper case before the model's own checks see it; the rules are `promo_code_clean`'s.
        return promo_code_normalize(self.cleaned_data["code"])

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).strip().upper()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        # The amount in minor units is no form field: it is set here, where the currency is
        # known, as the tariff form does with its price.
        self.instance.amount_off = None
        currency = str(data.get("currency") or "").strip()
        if data.get("kind") == PromoKind.FIXED and data.get("amount") and currency:
            try:
                self.instance.amount_off = money_entry_parse(data["amount"], currency)
            except ValidationError as error:
                self.add_error("amount", error)
        return data

    def _post_clean(self) -> None:
        tariffs = self.cleaned_data.get("tariffs") or []
        _clean_by_service(
            self, lambda promo: promo_code_clean(promo=promo, tariffs=tariffs), {"amount_off": "amount"}
        )
        super()._post_clean()  # type: ignore[misc]  # ModelForm's own hook, missing from the stubs


def promo_terms(promo: PromoCode) -> dict[str, Any]:
    """Return the discount a code gives: kind, value, currency and how long."""
    return {
        "kind": promo.kind,
        "percent_off": promo.percent_off,
        "amount_off": promo.amount_off,
        "currency": promo.currency,
        "periods": promo.periods,
    }


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
        discount = _("%(discount)s off, %(lasts)s") % {
            "discount": promo.discount_display,
            "lasts": promo_duration_display(promo.periods),
        }
        tariffs = [tariff.name for tariff in form.cleaned_data.get("tariffs") or []]
        where = ", ".join(tariffs) if tariffs else _("every tariff")
        if before is None:
            return [
                _("New promo code %(code)s: %(discount)s, on %(where)s.")
                % {"code": promo.code, "discount": discount, "where": where}
            ]
        was = _("%(discount)s off, %(lasts)s") % {
            "discount": discount_display(
                before["kind"], before["percent_off"] or before["amount_off"] or 0, before["currency"]
            ),
            "lasts": promo_duration_display(before["periods"]),
        }
        return [
            _("The discount of %(code)s changes from %(was)s to %(discount)s, on %(where)s.")
            % {"code": promo.code, "was": was, "discount": discount, "where": where},
            gettext("Viewers who already used the code keep the discount they subscribed with."),
        ]

    def save_model(self, request: HttpRequest, obj: PromoCode, form: forms.ModelForm, change: bool) -> None:
        promo_code_save(promo=obj, tariffs=form.cleaned_data.get("tariffs") or [])

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Save nothing more: `promo_code_save` has set the code's tariffs with the code."""


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
