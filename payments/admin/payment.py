"""Admin of payments: read-only, but for the refund form and the daily reconciliation report."""

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import account_ids_matching
from billing.models import Subscription
from core.admin_base import ReadOnlyAdminMixin
from core.errors import DomainError
from core.money import format_money, to_major_units, to_minor_units
from core.validation import uuid_or_none
from payments.admin.lists import ExportAdminMixin, TariffListFilter
from payments.admin.reconciliation import reconciliation_report_page
from payments.admin.refund_messages import refund_outcome_message
from payments.exports import PaymentExportForm, PaymentResource
from payments.models import Payment, Refund, RefundReason
from payments.services.refunds.rules import (
    refund_access_default,
    refund_approval_threshold,
    refund_for_request_key,
    refund_leaves_nothing,
    refund_left_amount,
    refund_needs_approval,
)
from payments.services.refunds.staff import refund_create
from tariffs.admin import CurrencyListFilter


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    fields = (
        "id",
        "amount_money",
        "status",
        "reason",
        "end_access",
        "provider_refund_id",
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


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, ExportAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "account_user_id",
        "kind",
        "status",
        "amount_money",
        "refunded_money",
        "provider",
        "created_at",
        "paid_at",
    )
    # "Fiscal receipt: failed to register" is accounting's list of receipts to register by hand.
    list_filter = (
        "status",
        "kind",
        "provider",
        "receipt_registration",
        TariffListFilter,
        CurrencyListFilter,
        "created_at",
        "paid_at",
    )
    list_select_related = ("subscription__account",)
    resource_classes = [PaymentResource]
    export_form_class = PaymentExportForm
    # Searched by get_search_results below; listed here for the search box and its help.
    search_fields = (
        "subscription__account__user_id",
        "subscription__account__email",
        "provider_checkout_id",
        "provider_payment_id",
        "provider_charge_id",
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
        "provider",
        "provider_checkout_id",
        "provider_payment_id",
        "provider_charge_id",
        "receipt_registration",
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
        """Show a range of UTC days' totals and every mismatch with Stripe (payments/admin/reconciliation.py)."""
        return reconciliation_report_page(self, request)

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
        existing = refund_for_request_key(request_key=uuid_or_none(request.POST.get("request_key", "")))
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
                "full": refund_leaves_nothing(payment=payment, amount=amount),
                "reason": RefundReason(form.cleaned_data["reason"]).label,
                "comment": form.cleaned_data["comment"],
                "end_access": form.end_access(),
                # What this payment has refunded in all counts, as the service decides it.
                "needs_approval": refund_needs_approval(payment=payment, amount=amount),
                "threshold": format_money(refund_approval_threshold(), payment.currency),
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
        level, text = refund_outcome_message(refund)
        self.message_user(request, text, level)

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
            | Q(provider_checkout_id=term)
            | Q(provider_payment_id=term)
            | Q(provider_charge_id=term)
        )
        if (payment_id := uuid_or_none(term)) is not None:
            match |= Q(pk=payment_id)
        return queryset.filter(match), False
