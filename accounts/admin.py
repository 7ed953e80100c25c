"""Admin of billing accounts (support's page on a viewer), and the exact search of the big tables."""

import uuid
from typing import Any

from django.contrib import admin
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from accounts.admin_overview import ACCOUNT_OVERVIEW_ROWS, account_overview
from accounts.models import BillingAccount
from core.audit import AuditAction
from payments.services.cancellation import CANCELABLE_STATUSES

# Who may cancel a viewer's subscription from admin (Support); a refund also needs payments.add_refund.
CANCEL_PERMISSION = "billing.cancel_subscription"

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


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    """The account's page is support's one screen on a viewer: the form, then every row about them."""

    list_display = ("user_id", "email", "language", "stripe_customer_id", "created_at")
    list_filter = ("language",)
    # Any part of the cinema user id, email or Stripe customer id, whatever its case, or the
    # account's own id. The accounts table is one row per viewer; the big tables' searches
    # stay exact (`account_ids_matching`).
    search_fields = ("user_id", "email", "stripe_customer_id", "pk__exact")
    search_help_text = _(
        "Part of the cinema user id, email or Stripe customer id (any case), or the account id."
    )
    fields = ("user_id", "email", "language", "stripe_customer_id", "created_at", "updated_at")
    # The user id and the Stripe customer id tie the account to the cinema and to Stripe.
    readonly_fields = ("user_id", "stripe_customer_id", "created_at", "updated_at")
    change_form_template = "admin/accounts/billingaccount/change_form.html"
    show_full_result_count = False

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
