"""Admin of billing accounts (support's page on a viewer), and the exact search of the big tables."""

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from accounts.admin_overview import ACCOUNT_OVERVIEW_ROWS, account_overview
from accounts.models import BillingAccount
from core.audit import AuditAction
from payments.models import ProviderCustomer
from payments.services.cancellation import CANCELABLE_STATUSES

# Who may cancel a viewer's subscription from admin (Support); a refund also needs payments.add_refund.
CANCEL_PERMISSION = "billing.cancel_subscription"

# An email may belong to a few accounts; a search that matches more is not a lookup.
MAX_ACCOUNTS_PER_SEARCH = 100


def account_ids_matching(term: str) -> list[int]:
    """Return the ids of the accounts whose cinema user id, email or customer id at a provider is the term.

    Matches are exact (the email ignoring case) so that the billing tables, which grow to
    millions of rows, are then searched through their indexes on the account's rows.
    """
    match = Q(user_id=term)
    # Only a term that can be an email is compared with emails: the case-insensitive
    # comparison cannot use the email index, while the other columns are indexed.
    if "@" in term:
        match |= Q(email__iexact=term)
    accounts = BillingAccount.objects.filter(match).values_list("pk", flat=True)
    # A union rather than an OR with a subquery: each half is read through its own index.
    at_providers = (
        ProviderCustomer.objects.filter(customer_ref=term)
        .exclude(customer_ref="")
        .values_list("account_id", flat=True)
    )
    return list(accounts.union(at_providers)[:MAX_ACCOUNTS_PER_SEARCH])


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    """The account's page is support's one screen on a viewer: the form, then every row about them."""

    list_display = ("user_id", "email", "language", "customer_ids", "created_at")
    list_filter = ("language",)
    # Any part of the cinema user id, email or customer id at any provider, whatever its case,
    # or the account's own id. The accounts table is one row per viewer; the big tables'
    # searches stay exact (`account_ids_matching`).
    search_fields = ("user_id", "email", "provider_customers__customer_ref", "pk__exact")
    search_help_text = _(
        "Part of the cinema user id, email or customer id at a provider (any case), or the account id."
    )
    fields = ("user_id", "email", "language", "customer_ids", "created_at", "updated_at")
    # The user id and the customer ids tie the account to the cinema and to its providers.
    readonly_fields = ("user_id", "customer_ids", "created_at", "updated_at")
    change_form_template = "admin/accounts/billingaccount/change_form.html"
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[BillingAccount]:
        return super().get_queryset(request).prefetch_related("provider_customers")

    @admin.display(description=_("customer ids at the providers"))
    def customer_ids(self, account: BillingAccount) -> str:
        """Return the account's customer id at each provider, e.g. "Stripe: cus_123"."""
        customers = sorted(account.provider_customers.all(), key=lambda customer: customer.provider)
        return (
            ", ".join(
                f"{customer.get_provider_display()}: {customer.customer_ref}"
                for customer in customers
                if customer.customer_ref
            )
            or "-"
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        account = self.get_object(request, object_id)
        context: dict[str, Any] = {**(extra_context or {})}
        if account is not None:
            overview = account_overview(account=account)
            for entry in overview.audit_entries:
                # The action's name in the reader's language, as the audit log's own page shows it.
                action = (entry.additional_data or {}).get("action")
                entry.staff_action = (
                    AuditAction(action).label if action in AuditAction.values else entry.get_action_display()
                )
            context["overview"] = overview
            context["overview_rows"] = ACCOUNT_OVERVIEW_ROWS
            context["can_cancel"] = request.user.has_perm(CANCEL_PERMISSION)
            context["cancelable_statuses"] = CANCELABLE_STATUSES
        return super().change_view(request, object_id, form_url, context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts are created by the API on a cinema user's first request.
        return False
