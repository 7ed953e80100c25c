"""The audit log in admin: every entry read-only, filterable by who, when, what and which action.

auditlog ships an admin for its entries; this one replaces it to add what our entries carry in
`additional_data` (the action's name and the reason, see billing.audit) as a column, a filter
and a search field, and a filter by staff member. Who sees it is the `auditlog.view_logentry`
permission (the Accounting role); nobody may add, change or delete an entry.
"""

import json
from typing import Any

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.filters import ResourceTypeFilter
from auditlog.models import LogEntry
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.audit import AuditAction

AUTOMATIC = "_model"


class AuditActionFilter(admin.SimpleListFilter):
    title = _("staff action")
    parameter_name = "staff_action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            *AuditAction.choices,
            (AUTOMATIC, _("edit in admin (tariffs, promo codes)")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        value = self.value()
        if value is None:
            return queryset
        if value == AUTOMATIC:
            return queryset.filter(additional_data__action__isnull=True)
        return queryset.filter(additional_data__action=value)


if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(AuditlogLogEntryAdmin):
    list_display = ["created", "resource_url", "staff_action", "msg_short", "reason", "user_url"]
    list_filter = [
        AuditActionFilter,
        ("actor", admin.RelatedOnlyFieldListFilter),
        "timestamp",
        ResourceTypeFilter,
        "action",
    ]
    search_fields = [
        "object_repr",
        "object_pk",
        "actor__username",
        "actor__email",
        "additional_data__reason",
        "additional_data__action",
    ]
    search_help_text = _("Object (id or name), staff member's user name or email, reason or action name.")
    readonly_fields = [
        "created",
        "resource_url",
        "action",
        "user_url",
        "staff_action",
        "reason",
        "msg",
        "details",
    ]
    fieldsets = [
        (None, {"fields": ["created", "user_url", "resource_url", "staff_action", "reason"]}),
        (_("Changes"), {"fields": ["action", "msg", "details"]}),
    ]
    # The log only grows: no second COUNT(*) of all of it on every page.
    show_full_result_count = False

    @admin.display(description=_("staff action"))
    def staff_action(self, entry: LogEntry) -> str:
        name = (entry.additional_data or {}).get("action")
        if name is None:
            return str(entry.get_action_display())
        return str(AuditAction(name).label) if name in AuditAction.values else str(name)

    @admin.display(description=_("reason"))
    def reason(self, entry: LogEntry) -> str:
        return str((entry.additional_data or {}).get("reason") or "")

    @admin.display(description=_("details"))
    def details(self, entry: LogEntry) -> str:
        if not entry.additional_data:
            return "-"
        return format_html("<pre>{}</pre>", json.dumps(entry.additional_data, indent=2, ensure_ascii=False))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The log is evidence: no entry is deleted, not even by a superuser.
        return False
