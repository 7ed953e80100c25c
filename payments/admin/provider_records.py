"""Admin of what we keep of the providers: their events, checkout pages and reconciliation runs."""

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin_base import ReadOnlyAdminMixin
from core.money import format_money
from core.validation import uuid_or_none
from payments.models import CheckoutSession, ReconciliationRun, WebhookEvent
from payments.services.webhooks import webhook_event_reprocess


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "event_id",
        "provider",
        "type",
        "status",
        "source",
        "attempts",
        "provider_created_at",
        "received_at",
    )
    list_filter = ("status", "provider", "source", "type")
    search_fields = ("event_id", "object_id")
    search_help_text = _(
        "Exact event id at the provider, or the id of the object it is about (cs_…, pi_…, ch_…)."
    )
    show_full_result_count = False
    actions = ["reprocess"]
    fields = (
        "provider",
        "event_id",
        "type",
        "object_id",
        "status",
        "source",
        "attempts",
        "last_error",
        "provider_created_at",
        "received_at",
        "processed_at",
        "payload",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[WebhookEvent], search_term: str
    ) -> tuple[QuerySet[WebhookEvent], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(event_id=term) | Q(object_id=term)), False

    @admin.action(description=_("Process the selected events again"), permissions=["reprocess"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        events = list(queryset)
        for event in events:
            webhook_event_reprocess(event=event, actor=request.user)  # type: ignore[arg-type]
        self.message_user(
            request,
            # Queueing never fails the action: with the task queue down the events stay
            # "received" and the next reconciliation run processes them.
            ngettext(
                "%(count)d event queued for processing. If the task queue is down, the next "
                "reconciliation run (every 5 minutes) processes it.",
                "%(count)d events queued for processing. If the task queue is down, the next "
                "reconciliation run (every 5 minutes) processes them.",
                len(events),
            )
            % {"count": len(events)},
            messages.SUCCESS,
        )

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.reprocess_webhookevent")


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "account_user_id",
        "mode",
        "status",
        "provider_session_id",
        "expires_at",
        "created_at",
    )
    list_filter = ("status", "mode", "provider")
    list_select_related = ("subscription__account",)
    search_fields = ("provider_session_id", "id")
    search_help_text = _("Exact checkout page id at the provider (cs_…) or checkout id.")
    show_full_result_count = False
    fields = (
        "id",
        "subscription",
        "payment",
        "mode",
        "status",
        "provider_session_id",
        "url",
        "expires_at",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description=_("cinema user id"))
    def account_user_id(self, checkout: CheckoutSession) -> str:
        return checkout.subscription.account.user_id

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[CheckoutSession], search_term: str
    ) -> tuple[QuerySet[CheckoutSession], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(provider_session_id=term)
        if (checkout_id := uuid_or_none(term)) is not None:
            match |= Q(pk=checkout_id)
        return queryset.filter(match), False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "started_at",
        "kind",
        "provider",
        "status",
        "examined",
        "fixed",
        "finished_at",
        "duration",
    )
    list_filter = ("kind", "provider", "status", "started_at")
    show_full_result_count = False
    fields = (
        "kind",
        "provider",
        "status",
        "started_at",
        "finished_at",
        "duration",
        "examined",
        "fixed",
        "error",
        "what_was_fixed",
    )
    readonly_fields = fields

    @admin.display(description=_("duration"))
    def duration(self, run: ReconciliationRun) -> str:
        if run.finished_at is None:
            return "-"
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"

    @admin.display(description=_("what was fixed"))
    def what_was_fixed(self, run: ReconciliationRun) -> str:
        if not run.fixes:
            return "-"
        rows = [self._fix_row(fix) for fix in run.fixes]
        more = run.fixed - len(run.fixes)
        if more > 0:
            rows.append(format_html("<li>{}</li>", _("… and %(count)d more") % {"count": more}))
        return format_html("<ul>{}</ul>", mark_safe("".join(rows)))  # noqa: S308 - rows are escaped

    @staticmethod
    def _fix_row(fix: dict[str, Any]) -> str:
        if "event" in fix:
            link = reverse("admin:payments_webhookevent_changelist") + "?" + urlencode({"q": fix["event"]})
            how = _("missed, fed") if fix.get("new", True) else _("stored but never handled, fed")
            return format_html(
                '<li><a href="{}">{}</a> {} ({}) → {}</li>',
                link,
                fix["event"],
                fix["type"],
                how,
                fix["status"],
            )
        if "charge" in fix:
            # The unbooked-charges sweep: a charge at the provider no row of ours books.
            return format_html(
                "<li>{} {} ({}): {}</li>",
                _("charge"),
                fix["charge"],
                format_money(fix["amount"], fix["currency"]),
                str(fix["outcome"]).replace("_", " "),
            )
        what = fix.get("payment") or fix.get("checkout")
        page = "payment" if fix.get("payment") else "checkoutsession"
        link = reverse(f"admin:payments_{page}_change", args=[what])
        changes = "; ".join(
            f"{name.replace('_', ' ')}: {before or '-'} → {after or '-'}"
            for name, (before, after) in fix["changes"].items()
        )
        return format_html(
            '<li>{} <a href="{}">{}</a>: {}</li>', page.replace("session", ""), link, what, changes
        )
