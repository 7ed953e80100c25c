"""Admin of billing accounts, and the exact search staff use to find an account's rows."""

import uuid

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import BillingAccount
from billing.admin_base import ReadOnlyAdminMixin
from billing.models import Subscription
from billing.money import format_money

# An email may belong to a few accounts; a search that matches more is not a lookup.
MAX_ACCOUNTS_PER_SEARCH = 100


def account_ids_matching(term: str) -> list[int]:
    """Return the ids of the accounts whose cinema user id, email or Stripe customer id is the term.

    Matches are exact (the email ignoring case) so that the billing tables, which grow to
    millions of rows, are then searched through their indexes on the account's rows.
    """
    match = Q(user_id=term) | Q(stripe_customer_id=term)
    # Only a term that can be an email is compared with emails: the case-insensitive
    # comparison cannot use the email index, while the other two columns are indexed.
    if "@" in term:
        match |= Q(email__iexact=term)
    accounts = BillingAccount.objects.filter(match)
    return list(accounts.values_list("pk", flat=True)[:MAX_ACCOUNTS_PER_SEARCH])


def uuid_or_none(term: str) -> uuid.UUID | None:
    """Return the term as a UUID, or None when it is not one."""
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


class SubscriptionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Subscription
    fields = ("id", "tariff", "status", "price", "autopay", "current_period_end", "created_at")
    readonly_fields = fields
    show_change_link = True
    can_delete = False
    extra = 0

    @admin.display(description=_("price"))
    def price(self, subscription: Subscription) -> str:
        return format_money(subscription.amount, subscription.currency)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return super().get_queryset(request).select_related("tariff")


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ("user_id", "email", "language", "stripe_customer_id", "created_at")
    list_filter = ("language",)
    # Searched by get_search_results below; listed here for the search box and its help.
    search_fields = ("user_id", "email", "stripe_customer_id")
    search_help_text = _("Exact cinema user id, email or Stripe customer id.")
    fields = ("user_id", "email", "language", "stripe_customer_id", "created_at", "updated_at")
    # The user id and the Stripe customer id tie the account to the cinema and to Stripe.
    readonly_fields = ("user_id", "stripe_customer_id", "created_at", "updated_at")
    inlines = [SubscriptionInline]
    show_full_result_count = False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[BillingAccount], search_term: str
    ) -> tuple[QuerySet[BillingAccount], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(pk__in=account_ids_matching(term)), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts are created by the API on a cinema user's first request.
        return False
