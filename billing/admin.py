"""Admin of subscriptions: read-only, since every status change goes through billing.services."""

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.admin import account_ids_matching, uuid_or_none
from billing.admin_base import ReadOnlyAdminMixin
from billing.models import Subscription
from billing.money import format_money
from payments.models import Payment
from tariffs.admin import CurrencyListFilter


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
