"""Admin of payments and refunds: read-only, since money moves only through the services."""

import uuid
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, re_path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin

from accounts.admin import account_ids_matching, uuid_or_none
from billing.admin_base import ReadOnlyAdminMixin
from billing.errors import DomainError
from billing.models import Subscription
from billing.money import format_money, to_major_units, to_minor_units
from payments.exports import (
    EXPORT_FORMATS,
    PaymentExportForm,
    PaymentResource,
    RefundExportForm,
    RefundResource,
)
from payments.gateways.base import GatewayError
from payments.models import (
    CheckoutSession,
    Payment,
    ReconciliationRun,
    Refund,
    RefundReason,
    RefundRequest,
    RefundRequestStatus,
    RefundStatus,
    WebhookEvent,
)
from payments.services.daily_report import reconciliation_report_for_day
from payments.services.refunds import (
    refund_access_default,
    refund_approve,
    refund_create,
    refund_left_amount,
    refund_reject,
    refund_request_approve,
    refund_request_reject,
)
from payments.services.webhooks import webhook_event_reprocess
from tariffs.admin import CurrencyListFilter
from tariffs.models import Tariff


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    fields = (
        "id",
        "amount_money",
        "status",
        "reason",
        "end_access",
        "stripe_refund_id",
        "created_by",
        "created_at",
    )
    readonly_fields = fields
    show_change_link = True
    extra = 0

    @admin.display(description=_("amount"))
    def amount_money(self, refund: Refund) -> str:
        return format_money(refund.amount, refund.currency)


ACCESS_DEFAULT, ACCESS_END, ACCESS_KEEP = "default", "end", "keep"


class RefundForm(forms.Form):
    """What staff choose for one refund; `request_key` makes the form's submissions one refund."""

    amount = forms.DecimalField(label=_("amount"), min_value=Decimal(0))
    reason = forms.ChoiceField(label=_("reason"), choices=RefundReason.choices)
    comment = forms.CharField(label=_("comment"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    access = forms.ChoiceField(
        label=_("access"),
        widget=forms.RadioSelect,
        initial=ACCESS_DEFAULT,
        choices=[
            (ACCESS_DEFAULT, _("default: a full refund ends access now, a partial one keeps it")),
            (ACCESS_END, _("end access now")),
            (ACCESS_KEEP, _("keep access")),
        ],
    )
    # Generated when the form is shown: a second submission of the same form finds the same refund.
    request_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, payment: Payment, left: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.payment = payment
        self.left = left
        self.fields["amount"].help_text = _("At most %(left)s is left to refund.") % {
            "left": format_money(left, payment.currency)
        }

    def clean_amount(self) -> int:
        try:
            amount = to_minor_units(self.cleaned_data["amount"], self.payment.currency)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        if amount <= 0:
            raise forms.ValidationError(_("Enter an amount above zero."))
        if amount > self.left:
            raise forms.ValidationError(
                _("At most %(left)s is left to refund.")
                % {"left": format_money(self.left, self.payment.currency)}
            )
        return amount

    def end_access(self) -> bool:
        """Return whether the refund asked for ends access, the default rule applied."""
        choice = self.cleaned_data["access"]
        if choice == ACCESS_DEFAULT:
            return refund_access_default(payment=self.payment, amount=self.cleaned_data["amount"])
        return bool(choice == ACCESS_END)


class TariffListFilter(admin.SimpleListFilter):
    """Filter by the tariff subscribed to, offering the small tariff table's entries."""

    title = _("tariff")
    parameter_name = "tariff"
    # The path from the filtered model to its subscription's tariff id.
    tariff_path = "subscription__tariff_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), slug) for pk, slug in Tariff.objects.order_by("slug").values_list("pk", "slug")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(**{self.tariff_path: int(value)})
        return queryset


class RefundTariffListFilter(TariffListFilter):
    tariff_path = "payment__subscription__tariff_id"


class ExportAdminMixin(ExportMixin):
    """CSV and XLSX exports for a chosen date range, for holders of `export_<model>` only.

    The permission code is set by IMPORT_EXPORT_EXPORT_PERMISSION_CODE (config/settings/base.py);
    import is never offered (ExportMixin has none).
    """

    export_formats = EXPORT_FORMATS
    import_export_change_list_template = "admin/payments/change_list_export.html"


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, ExportAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "account_user_id",
        "kind",
        "status",
        "amount_money",
        "refunded_money",
        "created_at",
        "paid_at",
    )
    list_filter = ("status", "kind", TariffListFilter, CurrencyListFilter, "created_at", "paid_at")
    list_select_related = ("subscription__account",)
    resource_classes = [PaymentResource]
    export_form_class = PaymentExportForm
    # Searched by get_search_results below; listed here for the search box and its help.
    search_fields = (
        "subscription__account__user_id",
        "subscription__account__email",
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "stripe_charge_id",
        "id",
    )
    search_help_text = _(
        "Exact cinema user id, email, Stripe customer, Checkout Session, PaymentIntent "
        "or charge id, or payment id."
    )
    # The table holds millions of rows: no second COUNT(*) of all of them on every page.
    show_full_result_count = False
    fields = (
        "id",
        "subscription",
        "kind",
        "status",
        "amount_money",
        "refunded_money",
        "period_start",
        "period_end",
        "idempotency_key",
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "stripe_charge_id",
        "card_brand",
        "card_last4",
        "failure_code",
        "failure_message",
        "paid_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [RefundInline]
    change_form_template = "admin/payments/payment/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        refund = path(
            "<path:object_id>/refund/",
            self.admin_site.admin_view(self.refund_view),
            name="payments_payment_refund",
        )
        # Before the catch-all "<path:object_id>/" routes, which would take it for an id.
        report = path(
            "reconciliation-report/",
            self.admin_site.admin_view(self.reconciliation_report_view),
            name="payments_payment_reconciliation_report",
        )
        return [report, refund, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        can_see_report = request.user.has_perm("payments.view_reconciliation_report")
        return super().changelist_view(
            request, {**(extra_context or {}), "has_reconciliation_report_permission": can_see_report}
        )

    def reconciliation_report_view(self, request: HttpRequest) -> HttpResponse:
        """Show one UTC day's totals and every mismatch between our payments and refunds and Stripe's."""
        if not request.user.has_perm("payments.view_reconciliation_report"):
            raise PermissionDenied
        # Yesterday by default: the last day that is over at Stripe too.
        yesterday = timezone.now().astimezone(UTC).date() - timedelta(days=1)
        day, report, error = yesterday, None, ""
        raw_day = request.GET.get("day", "")
        try:
            day = date.fromisoformat(raw_day) if raw_day else yesterday
        except ValueError:
            error = str(_("Enter the day as YYYY-MM-DD."))
        if not error:
            try:
                report = reconciliation_report_for_day(day=day)
            except GatewayError as exc:
                # The page says what failed instead of a 500: the usual cause is Stripe being
                # unreachable for a moment, and reloading is the remedy.
                error = _(
                    "Could not read Stripe's records for %(day)s: %(error)s. Try again in a moment."
                ) % {
                    "day": day.isoformat(),
                    "error": exc.message,
                }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Reconciliation report for %(day)s (UTC)") % {"day": day.isoformat()},
            "day": day,
            "report": report,
            "error": error,
            "changelist_url": reverse("admin:payments_payment_changelist"),
        }
        return TemplateResponse(request, "admin/payments/payment/reconciliation_report.html", context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        payment = self.get_object(request, object_id)
        can_refund = (
            payment is not None
            and request.user.has_perm("payments.add_refund")
            and refund_left_amount(payment=payment) > 0
        )
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), "can_refund": can_refund}
        )

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Refund a payment: the form, a confirmation page, then one refund whatever the submissions."""
        if not request.user.has_perm("payments.add_refund"):
            raise PermissionDenied
        payment = get_object_or_404(Payment, pk=uuid_or_none(object_id))
        change_url = reverse("admin:payments_payment_change", args=[payment.pk])
        left = refund_left_amount(payment=payment)
        if request.method != "POST":
            if left == 0:
                self.message_user(request, _("Nothing is left to refund on this payment."), messages.WARNING)
                return HttpResponseRedirect(change_url)
            form = RefundForm(
                payment=payment,
                left=left,
                initial={
                    "amount": to_major_units(left, payment.currency),
                    "reason": RefundReason.REQUESTED_BY_CUSTOMER,
                    "access": ACCESS_DEFAULT,
                    "request_key": uuid.uuid4(),
                },
            )
            return self._refund_page(request, payment, form, left, confirm=False)
        # A submission whose refund already exists (a double click) shows that refund again.
        key = uuid_or_none(request.POST.get("request_key", ""))
        existing = Refund.objects.filter(request_key=key).first() if key is not None else None
        if existing is not None and existing.payment_id == payment.pk:
            self._report_refund(request, existing, repeated=True)
            return HttpResponseRedirect(change_url)
        form = RefundForm(request.POST, payment=payment, left=left)
        if not form.is_valid():
            return self._refund_page(request, payment, form, left, confirm=False)
        if request.POST.get("confirm") != "yes":
            return self._refund_page(request, payment, form, left, confirm=True)
        try:
            refund = refund_create(
                payment=payment,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                comment=form.cleaned_data["comment"],
                end_access=form.end_access(),
                created_by=request.user,  # type: ignore[arg-type]
                request_key=form.cleaned_data["request_key"],
            )
        except DomainError as exc:
            form.add_error(None, gettext(exc.message))
            return self._refund_page(
                request, payment, form, refund_left_amount(payment=payment), confirm=False
            )
        self._report_refund(request, refund, repeated=False)
        return HttpResponseRedirect(change_url)

    def _refund_page(
        self, request: HttpRequest, payment: Payment, form: RefundForm, left: int, *, confirm: bool
    ) -> TemplateResponse:
        summary: dict[str, Any] = {}
        if confirm:
            amount = form.cleaned_data["amount"]
            summary = {
                "amount": format_money(amount, payment.currency),
                "full": amount + payment.refunded_amount >= payment.amount,
                "reason": RefundReason(form.cleaned_data["reason"]).label,
                "comment": form.cleaned_data["comment"],
                "end_access": form.end_access(),
                "needs_approval": amount > settings.REFUND_APPROVAL_THRESHOLD,
                "threshold": format_money(settings.REFUND_APPROVAL_THRESHOLD, payment.currency),
            }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Refund a payment"),
            "payment": payment,
            "amount_money": format_money(payment.amount, payment.currency),
            "refunded_money": format_money(payment.refunded_amount, payment.currency),
            "left_money": format_money(left, payment.currency),
            "form": form,
            "confirm": confirm,
            "summary": summary,
            "change_url": reverse("admin:payments_payment_change", args=[payment.pk]),
        }
        return TemplateResponse(request, "admin/payments/payment/refund.html", context)

    def _report_refund(self, request: HttpRequest, refund: Refund, *, repeated: bool) -> None:
        money = format_money(refund.amount, refund.currency)
        if repeated:
            self.message_user(
                request,
                _("This form was already submitted: refund of %(money)s is %(status)s.")
                % {"money": money, "status": refund.get_status_display()},
                messages.WARNING,
            )
            return
        level = {
            RefundStatus.SUCCEEDED: messages.SUCCESS,
            RefundStatus.FAILED: messages.ERROR,
        }.get(RefundStatus(refund.status), messages.INFO)
        text = {
            RefundStatus.AWAITING_APPROVAL: _(
                "Refund of %(money)s waits for another staff member's approval."
            ),
            RefundStatus.PENDING: _("Refund of %(money)s is pending at Stripe; its webhook will settle it."),
            RefundStatus.SUCCEEDED: _("Refunded %(money)s."),
            RefundStatus.FAILED: _("Stripe refused the refund of %(money)s: %(why)s"),
        }.get(RefundStatus(refund.status), _("Refund of %(money)s: %(why)s"))
        self.message_user(request, text % {"money": money, "why": refund.failure_reason}, level)

    @admin.display(description=_("cinema user id"), ordering="subscription__account__user_id")
    def account_user_id(self, payment: Payment) -> str:
        return payment.subscription.account.user_id

    @admin.display(description=_("amount"), ordering="amount")
    def amount_money(self, payment: Payment) -> str:
        return format_money(payment.amount, payment.currency)

    @admin.display(description=_("refunded"), ordering="refunded_amount")
    def refunded_money(self, payment: Payment) -> str:
        return format_money(payment.refunded_amount, payment.currency)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Payment], search_term: str
    ) -> tuple[QuerySet[Payment], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # The account's subscriptions are looked up first so that every branch of the
        # final OR is an indexed column of the payments table.
        subscription_ids = list(
            Subscription.objects.filter(account_id__in=account_ids_matching(term)).values_list(
                "pk", flat=True
            )
        )
        match = (
            Q(subscription_id__in=subscription_ids)
            | Q(stripe_checkout_session_id=term)
            | Q(stripe_payment_intent_id=term)
            | Q(stripe_charge_id=term)
        )
        if (payment_id := uuid_or_none(term)) is not None:
            match |= Q(pk=payment_id)
        return queryset.filter(match), False


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, ExportAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "payment",
        "amount_money",
        "status",
        "reason",
        "end_access",
        "created_by",
        "approved_by",
        "stripe_refund_id",
        "created_at",
    )
    list_filter = ("status", "reason", RefundTariffListFilter, CurrencyListFilter, "created_at")
    list_select_related = ("payment", "created_by", "approved_by")
    resource_classes = [RefundResource]
    export_form_class = RefundExportForm
    actions = ["approve", "reject"]
    # Searched by get_search_results below; listed here for the search box and its help.
    search_fields = ("stripe_refund_id", "payment__subscription__account__user_id", "id")
    search_help_text = _("Exact Stripe refund id, cinema user id, email or refund id.")
    show_full_result_count = False
    fields = (
        "id",
        "payment",
        "amount_money",
        "status",
        "reason",
        "comment",
        "end_access",
        "created_by",
        "approved_by",
        "stripe_refund_id",
        "failure_reason",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description=_("amount"), ordering="amount")
    def amount_money(self, refund: Refund) -> str:
        return format_money(refund.amount, refund.currency)

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.approve_refund")

    @admin.action(
        description=_("Approve the selected refunds (sends them to Stripe)"), permissions=["approve"]
    )
    def approve(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        for refund in queryset.filter(status=RefundStatus.AWAITING_APPROVAL):
            try:
                done = refund_approve(refund=refund, approver=request.user)  # type: ignore[arg-type]
            except DomainError as exc:
                self.message_user(
                    request,
                    _("%(refund)s: %(error)s") % {"refund": refund, "error": gettext(exc.message)},
                    messages.ERROR,
                )
                continue
            self.message_user(request, _("Approved: %(refund)s") % {"refund": done}, messages.SUCCESS)

    @admin.action(description=_("Reject the selected refunds (nothing is sent)"), permissions=["approve"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        for refund in queryset.filter(status=RefundStatus.AWAITING_APPROVAL):
            try:
                done = refund_reject(refund=refund, rejected_by=request.user)  # type: ignore[arg-type]
            except DomainError as exc:
                self.message_user(
                    request,
                    _("%(refund)s: %(error)s") % {"refund": refund, "error": gettext(exc.message)},
                    messages.ERROR,
                )
                continue
            self.message_user(request, _("Rejected: %(refund)s") % {"refund": done}, messages.SUCCESS)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Refund], search_term: str
    ) -> tuple[QuerySet[Refund], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        payment_ids = list(
            Payment.objects.filter(subscription__account_id__in=account_ids_matching(term)).values_list(
                "pk", flat=True
            )
        )
        match = Q(payment_id__in=payment_ids) | Q(stripe_refund_id=term)
        if (refund_id := uuid_or_none(term)) is not None:
            match |= Q(pk=refund_id)
        return queryset.filter(match), False


class DecisionForm(forms.Form):
    note = forms.CharField(label=_("note"), widget=forms.Textarea(attrs={"rows": 3}), required=False)


@admin.register(RefundRequest)
class RefundRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "payment", "account", "status", "decided_by", "decided_at")
    list_filter = ("status", "created_at")
    list_select_related = ("payment", "account", "decided_by")
    search_fields = ("account__user_id", "payment__id", "id")
    search_help_text = _("Exact cinema user id, payment id or request id.")
    show_full_result_count = False
    fields = (
        "id",
        "payment",
        "account",
        "reason",
        "status",
        "decided_by",
        "decided_at",
        "decision_note",
        "refund",
        "created_at",
    )
    readonly_fields = fields
    change_form_template = "admin/payments/refundrequest/change_form.html"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[RefundRequest], search_term: str
    ) -> tuple[QuerySet[RefundRequest], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(account__user_id=term)
        if (some_id := uuid_or_none(term)) is not None:
            match |= Q(pk=some_id) | Q(payment_id=some_id)
        return queryset.filter(match), False

    def get_urls(self) -> list[URLPattern]:
        return [
            re_path(
                r"^(?P<object_id>[^/]+)/(?P<decision>approve|reject)/$",
                self.admin_site.admin_view(self.decision_view),
                name="payments_refundrequest_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        refund_request = self.get_object(request, object_id)
        can_decide = (
            refund_request is not None
            and refund_request.status == RefundRequestStatus.OPEN
            and request.user.has_perm("payments.change_refundrequest")
        )
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), "can_decide": can_decide}
        )

    def decision_view(self, request: HttpRequest, object_id: str, decision: str) -> HttpResponse:
        """Approve (refund what is left) or reject (email the viewer the note) one open request."""
        if not request.user.has_perm("payments.change_refundrequest"):
            raise PermissionDenied
        if decision == "approve" and not request.user.has_perm("payments.add_refund"):
            raise PermissionDenied
        refund_request = get_object_or_404(
            RefundRequest.objects.select_related("payment", "account"), pk=uuid_or_none(object_id)
        )
        change_url = reverse("admin:payments_refundrequest_change", args=[refund_request.pk])
        form = DecisionForm(request.POST or None)
        if decision == "reject":
            form.fields["note"].required = True
            form.fields["note"].label = _("reason sent to the viewer")
        if request.method == "POST" and form.is_valid():
            note = form.cleaned_data["note"]
            try:
                if decision == "approve":
                    refund = refund_request_approve(
                        refund_request=refund_request,
                        staff=request.user,  # type: ignore[arg-type]
                        note=note,
                    )
                    self.message_user(
                        request,
                        _("Approved: refund of %(money)s is %(status)s.")
                        % {
                            "money": format_money(refund.amount, refund.currency),
                            "status": refund.get_status_display(),
                        },
                        messages.SUCCESS,
                    )
                else:
                    refund_request_reject(
                        refund_request=refund_request,
                        staff=request.user,  # type: ignore[arg-type]
                        note=note,
                    )
                    self.message_user(
                        request, _("Rejected; the viewer is emailed the reason."), messages.SUCCESS
                    )
            except DomainError as exc:
                self.message_user(request, gettext(exc.message), messages.ERROR)
            return HttpResponseRedirect(change_url)
        payment = refund_request.payment
        left = refund_left_amount(payment=payment)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Approve the refund request")
            if decision == "approve"
            else _("Reject the refund request"),
            "refund_request": refund_request,
            "decision": decision,
            "form": form,
            "left_money": format_money(left, payment.currency),
            "end_access": refund_access_default(payment=payment, amount=left) if left else False,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/payments/refundrequest/decision.html", context)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("event_id", "type", "status", "source", "attempts", "provider_created_at", "received_at")
    list_filter = ("status", "source", "type")
    search_fields = ("event_id", "object_id")
    search_help_text = _("Exact Stripe event id, or the id of the object it is about (cs_…, pi_…, ch_…).")
    show_full_result_count = False
    actions = ["reprocess"]
    fields = (
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
            ngettext(
                "%(count)d event queued for processing.",
                "%(count)d events queued for processing.",
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
        "stripe_session_id",
        "expires_at",
        "created_at",
    )
    list_filter = ("status", "mode")
    list_select_related = ("subscription__account",)
    search_fields = ("stripe_session_id", "id")
    search_help_text = _("Exact Stripe Checkout Session id or checkout id.")
    show_full_result_count = False
    fields = (
        "id",
        "subscription",
        "payment",
        "mode",
        "status",
        "stripe_session_id",
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
        match = Q(stripe_session_id=term)
        if (checkout_id := uuid_or_none(term)) is not None:
            match |= Q(pk=checkout_id)
        return queryset.filter(match), False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("started_at", "kind", "status", "examined", "fixed", "finished_at", "duration")
    list_filter = ("kind", "status", "started_at")
    show_full_result_count = False
    fields = (
        "kind",
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
