"""Admin of journal entries: read-only (the books are append-only), with their postings inline.

The list is searched by an entry's exact source ("payment:<id>", "refund:<id>:<total>", ...) or
a payment id, and filtered by kind, currency and book date. It links to accounting's reports
and the journal's export (ledger/admin/reports.py, ledger/admin/export.py), whose addresses it
holds.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin_base import ReadOnlyAdminMixin
from core.money import format_money
from core.validation import uuid_or_none
from ledger.admin.export import journal_export_page
from ledger.admin.reports import (
    EXPORT_PERMISSION,
    PERMISSION,
    deferred_revenue_page,
    revenue_page,
    trial_balance_page,
)
from ledger.models import JournalEntry, LedgerAccount, Posting


class PostingInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Posting
    fields = ("account", "debit", "credit")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A posting is a line of its entry: whoever may read the entry reads its lines.
        return bool(request.user.has_perm("ledger.view_journalentry"))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Posting]:
        # Debits first, as a journal is written.
        return super().get_queryset(request).select_related("account").order_by("-amount", "id")

    @admin.display(description=_("debit"))
    def debit(self, posting: Posting) -> str:
        return format_money(posting.amount, posting.currency) if posting.amount > 0 else ""

    @admin.display(description=_("credit"))
    def credit(self, posting: Posting) -> str:
        return format_money(-posting.amount, posting.currency) if posting.amount < 0 else ""


class EntryCurrencyFilter(admin.SimpleListFilter):
    """Filter by the currency of an entry's postings, offering the currencies of the small accounts table."""

    title = _("currency")
    parameter_name = "currency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        currencies = LedgerAccount.objects.order_by("currency").values_list("currency", flat=True).distinct()
        return [(code, code) for code in currencies]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(
                Exists(Posting.objects.filter(entry=OuterRef("pk"), currency=self.value()))
            )
        return queryset


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "effective_at", "kind", "source", "payment_link", "amount_money", "created_at")
    list_filter = ("kind", EntryCurrencyFilter, "effective_at")
    search_fields = ("source", "payment__id")
    search_help_text = _("Exact source (such as payment:<payment id>) or payment id.")
    # Millions of rows: no second COUNT(*) of all of them on every page.
    show_full_result_count = False
    fields = ("id", "kind", "source", "effective_at", "payment_link", "memo", "created_at")
    readonly_fields = fields
    inlines = [PostingInline]
    change_list_template = "admin/ledger/journalentry/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        def page(route: str, view: Any, name: str) -> URLPattern:
            return path(route, self.admin_site.admin_view(lambda request: view(self, request)), name=name)

        # Before the catch-all "<path:object_id>/" routes, which would take them for ids.
        return [
            page("reports/trial-balance/", trial_balance_page, "ledger_trial_balance"),
            page("reports/deferred-revenue/", deferred_revenue_page, "ledger_deferred_revenue"),
            page("reports/revenue/", revenue_page, "ledger_revenue_by_month"),
            page("export/", journal_export_page, "ledger_journal_export"),
            *super().get_urls(),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[JournalEntry]:
        postings = Posting.objects.filter(entry=OuterRef("pk"))
        # Per row shown (a page's worth), not grouped over the whole table.
        return (
            super()
            .get_queryset(request)
            .annotate(
                debits=Subquery(
                    postings.filter(amount__gt=0)
                    .values("entry")
                    .annotate(total=Sum("amount"))
                    .values("total")
                ),
                currency=Subquery(postings.values("currency")[:1]),
            )
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        links = {
            "can_view_ledger_reports": request.user.has_perm(PERMISSION),
            "can_export_journal": request.user.has_perm(EXPORT_PERMISSION),
        }
        return super().changelist_view(request, {**(extra_context or {}), **links})

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[JournalEntry], search_term: str
    ) -> tuple[QuerySet[JournalEntry], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # Exact matches only: both are indexed columns (source is unique).
        match = Q(source=term)
        if (payment_id := uuid_or_none(term)) is not None:
            match |= Q(payment_id=payment_id)
        return queryset.filter(match), False

    @admin.display(description=_("payment"))
    def payment_link(self, entry: JournalEntry) -> str:
        if entry.payment_id is None:
            return "-"
        url = reverse("admin:payments_payment_change", args=[entry.payment_id])
        return format_html('<a href="{}">{}</a>', url, entry.payment_id)

    @admin.display(description=_("amount"))
    def amount_money(self, entry: JournalEntry) -> str:
        debits, currency = getattr(entry, "debits", None), getattr(entry, "currency", None)
        return format_money(debits, currency) if debits is not None and currency else "-"
