"""Admin of refunds and viewers' refund requests: approvals and decisions go through the services."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, re_path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import account_ids_matching
from core.admin_base import ReadOnlyAdminMixin
from core.errors import DomainError
from core.money import format_money
from core.validation import uuid_or_none
from payments.admin.lists import ExportAdminMixin, RefundTariffListFilter
from payments.exports import RefundExportForm, RefundResource
from payments.models import Payment, Refund, RefundRequest, RefundRequestStatus, RefundStatus
from payments.services.refunds.approvals import refund_approve, refund_reject
from payments.services.refunds.rules import refund_access_default, refund_left_amount
from payments.services.refunds.viewer_requests import refund_request_approve, refund_request_reject
from tariffs.admin import CurrencyListFilter


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
        "provider_refund_id",
        "created_at",
        "succeeded_at",
    )
    list_filter = (
        "status",
        "reason",
        RefundTariffListFilter,
        CurrencyListFilter,
        "created_at",
        "succeeded_at",
    )
    list_select_related = ("payment", "created_by", "approved_by")
    resource_classes = [RefundResource]
    export_form_class = RefundExportForm
    actions = ["approve", "reject"]
    # Searched by get_search_results below; listed here for the search box and its help.
    search_fields = ("provider_refund_id", "payment__subscription__account__user_id", "id")
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
        "provider_refund_id",
        "failure_reason",
        "created_at",
        "succeeded_at",
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
        match = Q(payment_id__in=payment_ids) | Q(provider_refund_id=term)
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
