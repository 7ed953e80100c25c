"""Admin of subscriptions: the list support searches, and each subscription's read-only page."""

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from accounts.admin import account_ids_matching
from billing.admin.cancellation import CANCEL_PERMISSION, subscription_cancel_page
from billing.admin.extension import EXTEND_PERMISSION, subscription_extend_page
from billing.admin.plan_change import (
    CHANGE_PLAN_PERMISSION,
    CHANGEABLE_STATUSES,
    subscription_change_plan_page,
)
from billing.admin.support_pages import staff_may
from billing.models import Subscription
from billing.services import EXTENDABLE_STATUSES
from core.admin_base import ReadOnlyAdminMixin
from core.money import format_money
from core.validation import uuid_or_none
from payments.models import Payment
from payments.services.cancellation import CANCELABLE_STATUSES
from tariffs.admin.filters import CurrencyListFilter


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
    search_fields = ("account__user_id", "account__email", "account__provider_customers__customer_ref", "id")
    search_help_text = _("Exact cinema user id, email, customer id at a provider or subscription id.")
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
        cancel = path(
            "<path:object_id>/cancel/",
            self.admin_site.admin_view(self.cancel_view),
            name="billing_subscription_cancel",
        )
        change_plan = path(
            "<path:object_id>/change-plan/",
            self.admin_site.admin_view(self.change_plan_view),
            name="billing_subscription_change_plan",
        )
        return [extend, cancel, change_plan, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        subscription = self.get_object(request, object_id)
        can_extend = staff_may(
            request, subscription, permission=EXTEND_PERMISSION, statuses=EXTENDABLE_STATUSES
        )
        can_cancel = staff_may(
            request, subscription, permission=CANCEL_PERMISSION, statuses=CANCELABLE_STATUSES
        )
        return super().change_view(
            request,
            object_id,
            form_url,
            {
                **(extra_context or {}),
                "can_extend": can_extend,
                "can_cancel": can_cancel,
                "can_change_plan": staff_may(
                    request, subscription, permission=CHANGE_PLAN_PERMISSION, statuses=CHANGEABLE_STATUSES
                ),
            },
        )

    def extend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Extend a subscription as goodwill (billing/admin/extension.py)."""
        return subscription_extend_page(self, request, object_id)

    def change_plan_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Change a viewer's plan with the viewer's rules (billing/admin/plan_change.py)."""
        return subscription_change_plan_page(self, request, object_id)

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Cancel a subscription for a viewer (billing/admin/cancellation.py)."""
        return subscription_cancel_page(self, request, object_id)

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
