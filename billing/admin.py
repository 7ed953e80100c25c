"""Admin of subscriptions: read-only, since every status change goes through billing.services.

Support's one write is the goodwill extension (*Extend (goodwill)* on a subscription's page):
a form, a confirmation, then `billing.services.subscription_extend`.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

import billing.admin_audit  # noqa: F401 - registers the audit log's admin
from accounts.admin import account_ids_matching, uuid_or_none
from billing.admin_base import ReadOnlyAdminMixin
from billing.errors import DomainError
from billing.models import Subscription
from billing.money import format_money
from billing.services import (
    EXTENDABLE_STATUSES,
    EXTENSION_MAX_DAYS,
    subscription_extend,
    subscription_extension_plan,
)
from payments.models import Payment
from tariffs.admin import CurrencyListFilter

EXTEND_PERMISSION = "billing.extend_subscription"


class PaymentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Payment
    fields = ("id", "kind", "status", "amount_money", "refunded_money", "created_at", "paid_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0

    @admin.display(description=_("amount"))
    def amount_money(self, payment: Payment) -> str:
        return format_money(payment.amount, payment.currency)

    @admin.display(description=_("refunded"))
    def refunded_money(self, payment: Payment) -> str:
        return format_money(payment.refunded_amount, payment.currency)


class ExtendForm(forms.Form):
    """What support chooses for one goodwill extension; `period_end` is the end the form was shown for."""

    days = forms.IntegerField(
        label=_("days"),
        min_value=1,
        max_value=EXTENSION_MAX_DAYS,
        help_text=_("1 to %(max)d days added to the current period, free of charge.")
        % {"max": EXTENSION_MAX_DAYS},
    )
    reason = forms.CharField(
        label=_("reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why the viewer gets these days; kept in the audit log."),
    )
    # A resubmitted or stale form is refused by the service instead of extending twice.
    period_end = forms.CharField(widget=forms.HiddenInput)

    def clean_period_end(self) -> Any:
        try:
            value = parse_datetime(self.cleaned_data["period_end"])
        except ValueError:  # well formed but impossible, such as 30 February
            value = None
        if value is None:
            raise forms.ValidationError(_("The form is out of date; open it again."))
        return value


def _when(moment: Any) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else "-"


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "account_user_id",
        "account_email",
        "tariff_name",
        "status",
        "price",
        "autopay",
        "cancel_at_period_end",
        "current_period_end",
        "created_at",
    )
    list_filter = ("status", "tariff", "autopay", CurrencyListFilter)
    list_select_related = ("account", "tariff")
    # Searched by get_search_results below; listed here for the search box and its help.
    search_fields = ("account__user_id", "account__email", "account__stripe_customer_id", "id")
    search_help_text = _("Exact cinema user id, email, Stripe customer id or subscription id.")
    # The table holds millions of rows: no second COUNT(*) of all of them on every page.
    show_full_result_count = False
    fields = (
        "id",
        "account",
        "tariff",
        "status",
        "price",
        "autopay",
        "cancel_at_period_end",
        "billing_anchor",
        "current_period_start",
        "current_period_end",
        "canceled_at",
        "ended_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [PaymentInline]
    change_form_template = "admin/billing/subscription/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        extend = path(
            "<path:object_id>/extend/",
            self.admin_site.admin_view(self.extend_view),
            name="billing_subscription_extend",
        )
        return [extend, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        subscription = self.get_object(request, object_id)
        can_extend = (
            subscription is not None
            and request.user.has_perm(EXTEND_PERMISSION)
            and subscription.status in EXTENDABLE_STATUSES
        )
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), "can_extend": can_extend}
        )

    def extend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Extend a subscription as goodwill: the form, a confirmation page, then the extension."""
        if not request.user.has_perm(EXTEND_PERMISSION):
            raise PermissionDenied
        subscription = get_object_or_404(
            Subscription.objects.select_related("account", "tariff"), pk=uuid_or_none(object_id)
        )
        change_url = reverse("admin:billing_subscription_change", args=[subscription.pk])
        # Checked for every request: a form left open may be sent after the subscription changed.
        if subscription.status not in EXTENDABLE_STATUSES or subscription.current_period_end is None:
            self.message_user(
                request,
                _("Only a trialing or active subscription can be extended."),
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        if request.method != "POST":
            form = ExtendForm(initial={"period_end": subscription.current_period_end.isoformat()})
            return self._extend_page(request, subscription, form, confirm=False)
        form = ExtendForm(request.POST)
        if not form.is_valid():
            return self._extend_page(request, subscription, form, confirm=False)
        if request.POST.get("confirm") != "yes":
            return self._extend_page(request, subscription, form, confirm=True)
        try:
            extended = subscription_extend(
                subscription=subscription,
                days=form.cleaned_data["days"],
                actor=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data["reason"],
                expected_period_end=form.cleaned_data["period_end"],
            )
        except DomainError as exc:
            form.add_error(None, gettext(exc.message))
            return self._extend_page(request, subscription, form, confirm=False)
        self.message_user(
            request,
            ngettext(
                "Extended by %(days)d day as goodwill: the period now ends on %(end)s.",
                "Extended by %(days)d days as goodwill: the period now ends on %(end)s.",
                form.cleaned_data["days"],
            )
            % {"days": form.cleaned_data["days"], "end": _when(extended.current_period_end)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url)

    def _extend_page(
        self, request: HttpRequest, subscription: Subscription, form: ExtendForm, *, confirm: bool
    ) -> TemplateResponse:
        summary: dict[str, Any] = {}
        if confirm:
            plan = subscription_extension_plan(subscription=subscription, days=form.cleaned_data["days"])
            summary = {
                "days": form.cleaned_data["days"],
                "reason": form.cleaned_data["reason"],
                "new_end": _when(plan.period_end),
                "next_period_end": _when(plan.next_period_end),
                "renews": subscription.autopay and not subscription.cancel_at_period_end,
            }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Extend a subscription (goodwill)"),
            "subscription": subscription,
            "current_end": _when(subscription.current_period_end),
            "form": form,
            "confirm": confirm,
            "summary": summary,
            "change_url": reverse("admin:billing_subscription_change", args=[subscription.pk]),
        }
        return TemplateResponse(request, "admin/billing/subscription/extend.html", context)

    @admin.display(description=_("cinema user id"), ordering="account__user_id")
    def account_user_id(self, subscription: Subscription) -> str:
        return subscription.account.user_id

    @admin.display(description=_("email"), ordering="account__email")
    def account_email(self, subscription: Subscription) -> str:
        return subscription.account.email

    @admin.display(description=_("tariff"), ordering="tariff__name")
    def tariff_name(self, subscription: Subscription) -> str:
        return subscription.tariff.name

    @admin.display(description=_("price"), ordering="amount")
    def price(self, subscription: Subscription) -> str:
        return format_money(subscription.amount, subscription.currency)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Subscription], search_term: str
    ) -> tuple[QuerySet[Subscription], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(account_id__in=account_ids_matching(term))
        if (subscription_id := uuid_or_none(term)) is not None:
            match |= Q(pk=subscription_id)
        return queryset.filter(match), False
