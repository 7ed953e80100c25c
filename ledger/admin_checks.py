"""Admin of the ledger's daily self-checks: read-only, for Accounting and Support.

Registered when `ledger/admin/` imports this module.
"""

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.admin_base import ReadOnlyAdminMixin
from core.money import format_money
from ledger.models import LedgerCheckRun
from ledger.services.checks import CHECK_LABELS


@admin.register(LedgerCheckRun)
class LedgerCheckRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("checked_at", "clean", "balanced", "entries", "unbalanced_entries", "mismatch_count")
    list_filter = ("balanced", "checked_at")
    show_full_result_count = False
    fields = (
        "checked_at",
        "clean",
        "balanced",
        "entries",
        "unbalanced_entries",
        "mismatch_count",
        "what_disagrees",
        "balances_shown",
    )
    readonly_fields = fields

    @admin.display(description=_("clean"), boolean=True)
    def clean(self, run: LedgerCheckRun) -> bool:
        return run.is_clean

    @admin.display(description=_("what disagrees"))
    def what_disagrees(self, run: LedgerCheckRun) -> str:
        if not run.mismatches:
            return "-"
        rows = format_html_join(
            "",
            "<li>{}: {} {} ({} {}, {} {})</li>",
            (
                (
                    CHECK_LABELS.get(item.get("check", ""), item.get("check", "")),
                    item.get("subject", ""),
                    item.get("currency", ""),
                    _("expected"),
                    "-" if item.get("expected") is None else item["expected"],
                    _("found"),
                    "-" if item.get("found") is None else item["found"],
                )
                for item in run.mismatches
            ),
        )
        more = run.mismatch_count - len(run.mismatches)
        if more > 0:
            rows = format_html("{}<li>{}</li>", rows, _("… and %(count)d more") % {"count": more})
        return format_html("<ul>{}</ul>", rows)

    @admin.display(description=_("balances (debit +)"))
    def balances_shown(self, run: LedgerCheckRun) -> str:
        if not run.balances:
            return "-"
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td style='text-align:right'>{}</td></tr>",
                (
                    (currency, code, format_money(amount, currency))
                    for currency, codes in sorted(run.balances.items())
                    for code, amount in sorted(codes.items())
                ),
            ),
        )
