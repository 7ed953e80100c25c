"""The audit log in admin: every entry read-only, filterable by who, when, what and which action.

auditlog ships an admin for its entries; this one replaces it to add what our entries carry in
`additional_data` (the action's name and the reason, see core.audit) as a column, a filter
and a search field, and a filter by staff member. Who sees it is the `auditlog.view_logentry`
permission (the Accounting role); nobody may add, change or delete an entry.

Everything the page shows is ours and translated: the columns, filters and change summaries
are written here rather than taken from auditlog's admin, whose summary is hard-coded English.
"""

import json
from datetime import UTC
from typing import Any

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.filters import ResourceTypeFilter
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, ngettext, pgettext_lazy

from core.audit import AuditAction
from payments.models import RefundReason
from payments.services.unhomed import UNHOMED_COMMENT

AUTOMATIC = "_model"
# A list of changed fields longer than this is cut at a word in the list's column.
SUMMARY_MAX = 75

# django-auditlog ships no Russian. Its own strings that still reach our pages (the app's name
# in the menu, an entry's title in the breadcrumbs, the kinds of change) are listed here so
# makemessages puts them in our catalogue: LOCALE_PATHS comes before every app's catalogue,
# so Django answers auditlog's own gettext calls with our translation.
AUDITLOG_STRINGS = (
    gettext_noop("Audit log"),
    gettext_noop("Created {repr:s}"),
    gettext_noop("Updated {repr:s}"),
    gettext_noop("Deleted {repr:s}"),
    gettext_noop("Logged {repr:s}"),
    gettext_noop("create"),
    gettext_noop("update"),
    gettext_noop("delete"),
    gettext_noop("access"),
    gettext_noop("actor"),
    gettext_noop("timestamp"),
    gettext_noop("action"),
)

# What happened to the object, for entries auditlog wrote by itself (edits in admin).
CHANGE_KINDS = {
    LogEntry.Action.CREATE: pgettext_lazy("kind of change", "created"),
    LogEntry.Action.UPDATE: pgettext_lazy("kind of change", "changed"),
    LogEntry.Action.DELETE: pgettext_lazy("kind of change", "deleted"),
    LogEntry.Action.ACCESS: pgettext_lazy("kind of change", "viewed"),
}

# The context our services keep in `additional_data` (see the calls of audit_entry_create).
DETAIL_LABELS = {
    "amount": _("amount (minor units)"),
    "attempts": _("attempts"),
    "currency": _("currency"),
    "days": _("days"),
    "end_access": _("access ends"),
    "event_id": _("event id at the provider"),
    "kind": _("kind"),
    "left_to_refund": _("left to refund (minor units): before, after"),
    "next_period_end": _("next period ends"),
    "payment": _("payment"),
    "provider_error": _("the provider's error"),
    # Entries written before refunds became provider-neutral keep their key.
    "stripe_error": _("Stripe's error"),
    "subscription": _("subscription"),
    "subscription_status": _("subscription status"),
    "to": _("to"),
    "type": _("type"),
}


def _value_display(value: Any) -> str:
    # auditlog stores values as text: "None" for nothing, "True"/"False" for a box.
    return {"None": "-", "True": str(_("yes")), "False": str(_("no"))}.get(str(value), str(value))


def _entry_changes(entry: LogEntry) -> dict[str, tuple[str, str]]:
    """Return an entry's changes as {field's verbose name: (before, after)} for people to read."""
    model = entry.content_type.model_class()
    if model is None:
        # The model is gone: only the stored field names are left.
        changes = entry.changes_dict
    else:
        changes = entry.changes_display_dict
        # auditlog also lists reverse relations (a tariff's "subscriptions") with no value to show.
        for relation in model._meta.get_fields():
            if relation.auto_created and not relation.concrete:
                changes.pop(relation.name, None)
    return {
        str(name): (_value_display(values[0]), _value_display(values[1]))
        for name, values in changes.items()
        if isinstance(values, list | tuple) and len(values) == 2
    }


def _detail_value(value: Any) -> str:
    """Return one value of an entry's context as text: instants in the reader's format."""
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if isinstance(value, str):
        try:
            instant = parse_datetime(value)
        except ValueError:
            instant = None
        if instant is None:
            return value
        if timezone.is_naive(instant):  # stored as UTC, the way auditlog stores instants
            instant = timezone.make_aware(instant, UTC)
        return formats.date_format(timezone.localtime(instant), "DATETIME_FORMAT")
    return json.dumps(value, ensure_ascii=False)


def reason_display(reason: str) -> str:
    """Return a stored reason in the reader's language: a refund's reason code by its label."""
    if reason == UNHOMED_COMMENT:
        # The stored text is a marker the services look for, so it stays English in the table.
        return str(_("Automatic: paid for a checkout or renewal that could no longer be honoured."))
    code, separator, comment = reason.partition(": ")
    if code in RefundReason.values:
        label = str(RefundReason(code).label)
        return f"{label}: {comment}" if separator else label
    return reason


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


class StaffMemberFilter(admin.RelatedOnlyFieldListFilter):
    """Entries by one staff member, or by the system (no staff member)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = _("staff member")
        self.empty_value_display = format_html("{}", _("system"))


class TimeFilter(admin.DateFieldListFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = _("time")


class ObjectTypeFilter(ResourceTypeFilter):
    """Entries about one kind of object, named as admin names it ("tariff", "тариф")."""

    title = _("object type")

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, Any]]:
        ids = model_admin.get_queryset(request).values_list("content_type_id", flat=True).distinct()
        kinds = []
        for content_type in ContentType.objects.filter(pk__in=ids):
            model = content_type.model_class()
            kinds.append((content_type.pk, model._meta.verbose_name if model else content_type.model))
        return sorted(kinds, key=lambda kind: str(kind[1]))


class ChangeKindFilter(admin.SimpleListFilter):
    title = _("kind of change")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, Any]]:
        return [(str(value), label) for value, label in CHANGE_KINDS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        value = self.value()
        if value is None or not value.isdigit():
            return queryset
        return queryset.filter(action=int(value))


if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(AuditlogLogEntryAdmin):
    list_display = ["created", "resource_url", "staff_action", "msg_short", "reason", "user_url"]
    list_filter = [
        AuditActionFilter,
        ("actor", StaffMemberFilter),
        ("timestamp", TimeFilter),
        ObjectTypeFilter,
        ChangeKindFilter,
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
        "change_kind",
        "user_url",
        "staff_action",
        "reason",
        "msg",
        "details",
    ]
    fieldsets = [
        (None, {"fields": ["created", "user_url", "resource_url", "staff_action", "reason"]}),
        (_("Changes"), {"fields": ["change_kind", "msg", "details"]}),
    ]
    # The log only grows: no second COUNT(*) of all of it on every page.
    show_full_result_count = False

    @admin.display(description=_("time"), ordering="timestamp")
    def created(self, entry: LogEntry) -> str:
        return formats.date_format(timezone.localtime(entry.timestamp), "DATETIME_FORMAT")

    @admin.display(description=_("object"))
    def resource_url(self, entry: LogEntry) -> str:
        return super().resource_url(entry)

    @admin.display(description=_("staff member"))
    def user_url(self, entry: LogEntry) -> str:
        if entry.actor is None:
            return str(_("system"))
        return super().user_url(entry)

    @admin.display(description=_("kind of change"))
    def change_kind(self, entry: LogEntry) -> str:
        return str(CHANGE_KINDS.get(entry.action, entry.action))

    @admin.display(description=_("staff action"))
    def staff_action(self, entry: LogEntry) -> str:
        name = (entry.additional_data or {}).get("action")
        if name is None:
            return self.change_kind(entry)
        return str(AuditAction(name).label) if name in AuditAction.values else str(name)

    @admin.display(description=_("reason"))
    def reason(self, entry: LogEntry) -> str:
        return reason_display(str((entry.additional_data or {}).get("reason") or ""))

    @admin.display(description=_("changes"))
    def msg_short(self, entry: LogEntry) -> str:
        if entry.action in (LogEntry.Action.DELETE, LogEntry.Action.ACCESS):
            return ""
        changes = _entry_changes(entry)
        fields = ", ".join(changes)
        if len(fields) > SUMMARY_MAX:
            fields = fields[: fields.rfind(" ", 0, SUMMARY_MAX)] + " …"
        return ngettext(
            "%(count)d field changed: %(fields)s", "%(count)d fields changed: %(fields)s", len(changes)
        ) % {"count": len(changes), "fields": fields}

    @admin.display(description=_("changes"))
    def msg(self, entry: LogEntry) -> str:
        changes = _entry_changes(entry)
        if not changes:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((capfirst(field), before, after) for field, (before, after) in changes.items()),
        )
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("field"),
            _("before"),
            _("after"),
            rows,
        )

    @admin.display(description=_("details"))
    def details(self, entry: LogEntry) -> str:
        context = {
            key: value
            for key, value in (entry.additional_data or {}).items()
            if key not in ("action", "reason")  # shown above
        }
        if not context:
            return "-"
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><th>{}</th><td>{}</td></tr>",
                ((DETAIL_LABELS.get(key, key), _detail_value(value)) for key, value in context.items()),
            ),
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The log is evidence: no entry is deleted, not even by a superuser.
        return False
