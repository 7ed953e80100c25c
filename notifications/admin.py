"""Admin of notices and events: what was told to whom, what failed, and sending it again.

Notices, events and deliveries are written by services only; support can send a notice
again and redeliver an event. Endpoints are managed here by administrators (those given by
the environment are shown read-only).
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import account_ids_matching
from billing.models import Subscription
from core.admin_base import ReadOnlyAdminMixin
from core.validation import uuid_or_none
from notifications.models import (
    EndpointSource,
    EventDelivery,
    EventEndpoint,
    EventType,
    Notice,
    OutboxEvent,
)
from notifications.services.endpoints import EndpointUrlRefused, endpoint_url_validate
from notifications.services.events import configured_endpoints, delivery_redeliver
from notifications.services.notices import notice_resend

# A secret shorter than this is shown only as "set": its last four would give too much away.
MIN_SECRET_TO_HINT = 16


def _subscriptions_matching(term: str) -> list[Any]:
    """Return ids of the subscriptions a search term names: their id, or their account's."""
    ids = list(
        Subscription.objects.filter(account_id__in=account_ids_matching(term)).values_list("pk", flat=True)
    )
    if (subscription_id := uuid_or_none(term)) is not None:
        ids.append(subscription_id)
    return ids


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "kind",
        "status",
        "account_user_id",
        "to_email",
        "subject",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "kind", "language", "created_at")
    list_select_related = ("subscription__account",)
    search_fields = ("subscription__account__user_id", "subscription__account__email", "id")
    search_help_text = _("Exact cinema user id, email, subscription id or notice id.")
    show_full_result_count = False
    actions = ["send_again"]
    fields = (
        "id",
        "kind",
        "status",
        "subscription",
        "payment",
        "period_start",
        "reference",
        "to_email",
        "language",
        "subject",
        "text_preview",
        "html_preview",
        "attempts",
        "next_attempt_at",
        "last_error",
        "facts",
        "created_at",
        "sent_at",
    )
    readonly_fields = fields

    @admin.display(description=_("cinema user id"), ordering="subscription__account__user_id")
    def account_user_id(self, notice: Notice) -> str:
        return notice.subscription.account.user_id

    @admin.display(description=_("text"))
    def text_preview(self, notice: Notice) -> str:
        return format_html('<pre style="white-space:pre-wrap;margin:0;">{}</pre>', notice.body_text or "-")

    @admin.display(description=_("HTML"))
    def html_preview(self, notice: Notice) -> str:
        if not notice.body_html:
            return "-"
        # A sandboxed frame: the email's markup is shown, never run.
        return format_html(
            '<iframe sandbox="" srcdoc="{}" style="width:100%;max-width:640px;height:480px;border:1px solid #ccc;"></iframe>',
            notice.body_html,
        )

    @admin.display(description=_("facts"))
    def facts(self, notice: Notice) -> str:
        return format_html("<pre>{}</pre>", json.dumps(notice.context, indent=2, ensure_ascii=False))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Notice], search_term: str
    ) -> tuple[QuerySet[Notice], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(subscription_id__in=_subscriptions_matching(term))
        if (notice_id := uuid_or_none(term)) is not None:
            match |= Q(pk=notice_id)
        return queryset.filter(match), False

    @admin.action(description=_("Send again"), permissions=["resend"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[Notice]) -> None:
        notices = list(queryset)
        for notice in notices:
            notice_resend(notice=notice, actor=request.user)  # type: ignore[arg-type]
        self.message_user(
            request,
            ngettext(
                "%(count)d notice queued to be sent.", "%(count)d notices queued to be sent.", len(notices)
            )
            % {"count": len(notices)},
            messages.SUCCESS,
        )

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.resend_notice")


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = EventDelivery
    fields = ("endpoint", "status", "attempts", "last_status_code", "next_attempt_at", "delivered_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("occurred_at", "type", "user_id", "subscription_id_column", "sequence")
    list_filter = ("type", "occurred_at")
    search_fields = ("user_id", "subscription__id", "id")
    search_help_text = _("Exact cinema user id, email, subscription id or event id.")
    show_full_result_count = False
    fields = ("id", "type", "subscription", "user_id", "sequence", "occurred_at", "data")
    readonly_fields = fields
    inlines = [DeliveryInline]

    @admin.display(description=_("subscription id"), ordering="subscription_id")
    def subscription_id_column(self, event: OutboxEvent) -> str:
        return str(event.subscription_id)

    @admin.display(description=_("data"))
    def data(self, event: OutboxEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.payload, indent=2, ensure_ascii=False))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OutboxEvent], search_term: str
    ) -> tuple[QuerySet[OutboxEvent], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(user_id=term) | Q(subscription_id__in=_subscriptions_matching(term))
        if (event_id := uuid_or_none(term)) is not None:
            match |= Q(pk=event_id)
        return queryset.filter(match), False


@admin.register(EventDelivery)
class EventDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "event_type",
        "endpoint",
        "sequence",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "endpoint", "event__type")
    list_select_related = ("event", "endpoint")
    search_fields = ("event__id", "event__user_id", "subscription__id")
    search_help_text = _("Exact event id, cinema user id or subscription id.")
    show_full_result_count = False
    actions = ["redeliver"]
    fields = (
        "id",
        "event",
        "endpoint",
        "subscription",
        "sequence",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description=_("type"), ordering="event__type")
    def event_type(self, delivery: EventDelivery) -> str:
        return delivery.event.type

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[EventDelivery], search_term: str
    ) -> tuple[QuerySet[EventDelivery], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(event__user_id=term) | Q(subscription_id__in=_subscriptions_matching(term))
        if (event_id := uuid_or_none(term)) is not None:
            match |= Q(event_id=event_id)
        return queryset.filter(match), False

    @admin.action(description=_("Redeliver"), permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[EventDelivery]) -> None:
        deliveries = list(queryset)
        for delivery in deliveries:
            delivery_redeliver(delivery=delivery)
        self.message_user(
            request,
            ngettext(
                "%(count)d delivery queued to be sent again.",
                "%(count)d deliveries queued to be sent again.",
                len(deliveries),
            )
            % {"count": len(deliveries)},
            messages.SUCCESS,
        )

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.redeliver_eventdelivery")


class EventEndpointForm(forms.ModelForm):
    """An endpoint as staff edit it: its URL checked by the service, its secret write-only."""

    url = forms.URLField(label=_("URL"), max_length=2048, assume_scheme="https")
    new_secret = forms.CharField(
        label=_("signing secret"),
        max_length=255,
        required=False,
        strip=True,
        # Never sent back to the browser: what is stored stays on the server.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "The receiver verifies the Billing-Signature header with it. Leave empty to keep the "
            "current secret (a new endpoint gets a generated one, shown once after saving)."
        ),
    )
    event_types = forms.MultipleChoiceField(
        label=_("event types"),
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: every type."),
    )

    class Meta:
        model = EventEndpoint
        fields = ("name", "url", "event_types", "active")

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            endpoint_url_validate(url=url)
        except EndpointUrlRefused as exc:
            raise forms.ValidationError(gettext(exc.message) % exc.details, code=exc.code) from exc
        return url

    def save(self, commit: bool = True) -> EventEndpoint:
        """Store a typed secret; an empty field keeps the stored one (a new row's is generated)."""
        if self.cleaned_data.get("new_secret"):
            self.instance.secret = self.cleaned_data["new_secret"]
        endpoint: EventEndpoint = super().save(commit)
        return endpoint


@admin.register(EventEndpoint)
class EventEndpointAdmin(admin.ModelAdmin):
    form = EventEndpointForm
    list_display = ("__str__", "url", "types", "secret_state", "active", "source", "updated_at")
    list_filter = ("active", "source")
    readonly_fields = ("secret_state",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The secret is only ever typed in: the write-only field where it may be changed, the
        # state ("set, ends in …") wherever the endpoint is shown.
        if obj is None:
            return ("name", "url", "new_secret", "event_types", "active")
        if not self.has_change_permission(request, obj):
            return ("name", "url", "secret_state", "event_types", "active", "source")
        return ("name", "url", "secret_state", "new_secret", "event_types", "active")

    @admin.display(description=_("signing secret"))
    def secret_state(self, endpoint: EventEndpoint) -> str:
        if endpoint.source == EndpointSource.ENVIRONMENT:
            return str(_("from the environment"))
        if not endpoint.secret:
            return str(_("not set"))
        if len(endpoint.secret) < MIN_SECRET_TO_HINT:
            return str(_("set"))
        return str(_("set, ends in …%(last4)s") % {"last4": endpoint.secret[-4:]})

    @admin.display(description=_("event types"))
    def types(self, endpoint: EventEndpoint) -> str:
        if endpoint.source == EndpointSource.ENVIRONMENT:
            spec = configured_endpoints().get(endpoint.url)
            if spec is None:
                return str(_("no longer configured: receives nothing"))
            return ", ".join(spec.event_types) or str(_("all"))
        return ", ".join(endpoint.event_types) or str(_("all"))

    def save_model(self, request: HttpRequest, obj: EventEndpoint, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change and not form.cleaned_data.get("new_secret"):
            # Shown this once, so it can be copied to the receiver; never displayed again.
            self.message_user(
                request,
                _(
                    "The signing secret of %(endpoint)s is %(secret)s. "
                    "Copy it to the receiver now: it is not shown again."
                )
                % {"endpoint": obj, "secret": obj.secret},
                messages.WARNING,
            )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Endpoints from EVENT_ENDPOINTS change with the environment, not here.
        if obj is not None and obj.source == EndpointSource.ENVIRONMENT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deliveries keep their endpoint: deactivate it instead.
        return False
