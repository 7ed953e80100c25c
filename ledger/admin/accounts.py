"""Admin of the chart's accounts: read-only, opened by the posting service on first use."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_base import ReadOnlyAdminMixin
from ledger import accounts_chart as chart
from ledger.models import LedgerAccount


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("code", "currency", "grows_on")
    list_filter = ("currency",)
    search_fields = ("code",)
    fields = ("code", "currency", "grows_on")
    readonly_fields = fields

    @admin.display(description=_("grows on"))
    def grows_on(self, account: LedgerAccount) -> str:
        return str(_("debit") if chart.normal_side(account.code) == "debit" else _("credit"))
