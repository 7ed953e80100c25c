"""Admin of subscriptions: read-only, since every status change goes through billing.services.

Support's writes are the goodwill extension (*Extend (goodwill)* on a subscription's page: a
form, a confirmation, then `billing.services.subscription_extend`) and *Cancel subscription*
(a form, a confirmation, then `payments.services.cancellation.subscription_cancel_by_staff`).
"""

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

import billing.admin_audit  # noqa: F401 - registers the audit log's admin
from accounts.admin import account_ids_matching, uuid_or_none
from billing.models import Subscription, SubscriptionStatus
from billing.services import (
    EXTENDABLE_STATUSES,
    EXTENSION_MAX_DAYS,
    subscription_extend,
    subscription_extension_plan,
)
from core import clock
from core.admin_base import ReadOnlyAdminMixin
from core.errors import DomainError
from core.money import format_money
from payments.models import Payment, RefundReason, RefundStatus
from payments.services.cancellation import (
    CANCELABLE_STATUSES,
    CancellationPlan,
    subscription_cancel_by_staff,
    subscription_cancellation_plan,
)
from payments.services.refunds.rules import refund_approval_threshold, refund_needs_approval
from tariffs.admin import CurrencyListFilter

EXTEND_PERMISSION = "billing.extend_subscription"
CANCEL_PERMISSION = "billing.cancel_subscription"
REFUND_PERMISSION = "payments.add_refund"
WHEN_NOW, WHEN_PERIOD_END = "now", "period_end"


class PaymentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Payment
    fields = ("id", "kind", "status", "amount_money", "refunded_money", "created_at", "paid_at")
    readonly_fields = fields
    show_change_link = True
    extra = 0

    @admin.display(description=_("amount"))
    def amount_money(self, payment: Payment) -> str:
        return format_money(payment.amount, payment.currency)

    @admin.display(description=_("refunded"))
    def refunded_money(self, payment: Payment) -> str:
        return format_money(payment.refunded_amount, payment.currency)


def _days_help_text() -> str:
    # Translated when the form is shown: `gettext_lazy(...) % values` would be English for good.
    return gettext("1 to %(max)d days added to the current period, free of charge.") % {
        "max": EXTENSION_MAX_DAYS
    }


class ExtendForm(forms.Form):
    """What support chooses for one goodwill extension; `period_end` is the end the form was shown for."""

    days = forms.IntegerField(
        label=_("days"),
        min_value=1,
        max_value=EXTENSION_MAX_DAYS,
        help_text=lazy(_days_help_text, str)(),
    )
    reason = forms.CharField(
        label=_("reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why the viewer gets these days; kept in the audit log."),
    )
    # A resubmitted or stale form is refused by the service instead of extending twice.
    period_end = forms.CharField(widget=forms.HiddenInput)

    def clean_period_end(self) -> Any:
        try:
            value = parse_datetime(self.cleaned_data["period_end"])
        except ValueError:  # well formed but impossible, such as 30 February
            value = None
        if value is None:
            raise forms.ValidationError(_("The form is out of date; open it again."))
        return value


class CancelForm(forms.Form):
    """What support chooses for one cancellation; `request_key` makes the form's submissions one."""

    when = forms.ChoiceField(
        label=_("access ends"),
        widget=forms.RadioSelect,
        initial=WHEN_PERIOD_END,
        choices=[
            (WHEN_PERIOD_END, _("at the end of the current period (autopay is turned off)")),
            (WHEN_NOW, _("now")),
        ],
    )
    refund = forms.BooleanField(
        label=_("refund what is left"),
        required=False,
        help_text=_("Only when access ends now: the unused part of the paid period, counted to the second."),
    )
    refund_reason = forms.ChoiceField(
        label=_("refund reason"), choices=RefundReason.choices, initial=RefundReason.REQUESTED_BY_CUSTOMER
    )
    reason = forms.CharField(
        label=_("reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why the subscription is canceled; kept in the audit log."),
    )
    # Generated when the form is shown: a second submission of the same form cancels and refunds once.
    request_key = forms.UUIDField(widget=forms.HiddenInput)
    # The moment the confirmation page priced the refund at, so that what it said is what is refunded.
    priced_at = forms.DateTimeField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, may_refund: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.may_refund = may_refund

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("refund"):
            if not self.may_refund:
                raise forms.ValidationError(_("You may not refund payments."))
            if cleaned.get("when") != WHEN_NOW:
                raise forms.ValidationError(
                    _("What is left is refunded only when access ends now; at the period end it is used.")
                )
        return cleaned


def _when(moment: Any) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else "-"


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "account_user_id",
        "account_email",
        "tariff_name",
        "status",
        "price",
        "autopay",
        "cancel_at_period_end",
        "current_period_end",
        "created_at",
    )
    list_filter = ("status", "tariff", "autopay", CurrencyListFilter)
    list_select_related = ("account", "tariff")
    # Searched by get_search_results below; listed here for the search box and its help.
    search_fields = ("account__user_id", "account__email", "account__stripe_customer_id", "id")
    search_help_text = _("Exact cinema user id, email, Stripe customer id or subscription id.")
    # The table holds millions of rows: no second COUNT(*) of all of them on every page.
    show_full_result_count = False
    fields = (
        "id",
        "account",
        "tariff",
        "status",
        "price",
        "autopay",
        "cancel_at_period_end",
        "billing_anchor",
        "current_period_start",
        "current_period_end",
        "canceled_at",
        "ended_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [PaymentInline]
    change_form_template = "admin/billing/subscription/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        extend = path(
            "<path:object_id>/extend/",
            self.admin_site.admin_view(self.extend_view),
            name="billing_subscription_extend",
        )
        cancel = path(
            "<path:object_id>/cancel/",
            self.admin_site.admin_view(self.cancel_view),
            name="billing_subscription_cancel",
        )
        return [extend, cancel, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        subscription = self.get_object(request, object_id)
        can_extend = (
            subscription is not None
            and request.user.has_perm(EXTEND_PERMISSION)
            and subscription.status in EXTENDABLE_STATUSES
        )
        can_cancel = (
            subscription is not None
            and request.user.has_perm(CANCEL_PERMISSION)
            and subscription.status in CANCELABLE_STATUSES
        )
        return super().change_view(
            request,
            object_id,
            form_url,
            {**(extra_context or {}), "can_extend": can_extend, "can_cancel": can_cancel},
        )

    def extend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Extend a subscription as goodwill: the form, a confirmation page, then the extension."""
        if not request.user.has_perm(EXTEND_PERMISSION):
            raise PermissionDenied
        subscription = get_object_or_404(
            Subscription.objects.select_related("account", "tariff"), pk=uuid_or_none(object_id)
        )
        change_url = reverse("admin:billing_subscription_change", args=[subscription.pk])
        # Checked for every request: a form left open may be sent after the subscription changed.
        if subscription.status not in EXTENDABLE_STATUSES or subscription.current_period_end is None:
            self.message_user(
                request,
                _("Only a trialing or active subscription can be extended."),
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        if request.method != "POST":
            form = ExtendForm(initial={"period_end": subscription.current_period_end.isoformat()})
            return self._extend_page(request, subscription, form, confirm=False)
        form = ExtendForm(request.POST)
        if not form.is_valid():
            return self._extend_page(request, subscription, form, confirm=False)
        if request.POST.get("confirm") != "yes":
            return self._extend_page(request, subscription, form, confirm=True)
        try:
            extended = subscription_extend(
                subscription=subscription,
                days=form.cleaned_data["days"],
                actor=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data["reason"],
                expected_period_end=form.cleaned_data["period_end"],
            )
        except DomainError as exc:
            form.add_error(None, gettext(exc.message))
            return self._extend_page(request, subscription, form, confirm=False)
        self.message_user(
            request,
            ngettext(
                "Extended by %(days)d day as goodwill: the period now ends on %(end)s.",
                "Extended by %(days)d days as goodwill: the period now ends on %(end)s.",
                form.cleaned_data["days"],
            )
            % {"days": form.cleaned_data["days"], "end": _when(extended.current_period_end)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url)

    def _extend_page(
        self, request: HttpRequest, subscription: Subscription, form: ExtendForm, *, confirm: bool
    ) -> TemplateResponse:
        summary: dict[str, Any] = {}
        if confirm:
            plan = subscription_extension_plan(subscription=subscription, days=form.cleaned_data["days"])
            summary = {
                "days": form.cleaned_data["days"],
                "reason": form.cleaned_data["reason"],
                "new_end": _when(plan.period_end),
                "next_period_end": _when(plan.next_period_end),
                "renews": subscription.autopay and not subscription.cancel_at_period_end,
            }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Extend a subscription (goodwill)"),
            "subscription": subscription,
            "current_end": _when(subscription.current_period_end),
            "form": form,
            "confirm": confirm,
            "summary": summary,
            "change_url": reverse("admin:billing_subscription_change", args=[subscription.pk]),
        }
        return TemplateResponse(request, "admin/billing/subscription/extend.html", context)

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Cancel a subscription for a viewer: the form, a confirmation page, then one cancellation."""
        if not request.user.has_perm(CANCEL_PERMISSION):
            raise PermissionDenied
        subscription = get_object_or_404(
            Subscription.objects.select_related("account", "tariff"), pk=uuid_or_none(object_id)
        )
        change_url = reverse("admin:billing_subscription_change", args=[subscription.pk])
        may_refund = request.user.has_perm(REFUND_PERMISSION)
        confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
        # A confirmed form goes to the service whatever the status: a second submission of it
        # finds the cancellation it made (the subscription is canceled by then).
        if not confirmed and subscription.status not in CANCELABLE_STATUSES:
            self.message_user(
                request,
                _("Only a trialing, active or past-due subscription can be canceled."),
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        if request.method != "POST":
            form = CancelForm(
                may_refund=may_refund,
                initial={
                    "when": WHEN_PERIOD_END,
                    "refund_reason": RefundReason.REQUESTED_BY_CUSTOMER,
                    "request_key": uuid.uuid4(),
                },
            )
            return self._cancel_page(request, subscription, form, plan=None)
        form = CancelForm(request.POST, may_refund=may_refund)
        if not form.is_valid():
            return self._cancel_page(request, subscription, form, plan=None)
        if not confirmed:
            # Priced now; the confirmation carries the moment so the refund is what it shows.
            data = request.POST.copy()
            data["priced_at"] = clock.now().isoformat()
            form = CancelForm(data, may_refund=may_refund)
            form.is_valid()
            plan = subscription_cancellation_plan(
                subscription=subscription,
                now=form.cleaned_data["when"] == WHEN_NOW,
                refund=form.cleaned_data["refund"],
                at=form.cleaned_data["priced_at"],
            )
            return self._cancel_page(request, subscription, form, plan=plan)
        try:
            outcome = subscription_cancel_by_staff(
                subscription=subscription,
                now=form.cleaned_data["when"] == WHEN_NOW,
                refund=form.cleaned_data["refund"],
                actor=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data["reason"],
                request_key=form.cleaned_data["request_key"],
                refund_reason=form.cleaned_data["refund_reason"],
                priced_at=form.cleaned_data["priced_at"],
            )
        except DomainError as exc:
            form.add_error(None, gettext(exc.message))
            return self._cancel_page(request, subscription, form, plan=None)
        self._report_cancellation(request, outcome.subscription, outcome)
        return HttpResponseRedirect(change_url)

    def _cancel_page(
        self,
        request: HttpRequest,
        subscription: Subscription,
        form: CancelForm,
        *,
        plan: CancellationPlan | None,
    ) -> TemplateResponse:
        summary: dict[str, Any] = {}
        if plan is not None:
            summary = {
                "ends_now": plan.ends_now,
                "past_due": subscription.status == SubscriptionStatus.PAST_DUE,
                "access_until": _when(plan.access_until),
                "refund_asked": form.cleaned_data["refund"],
                "refund": format_money(plan.refund_amount, plan.currency) if plan.refund_amount else "",
                "payment": plan.payment,
                "paid": format_money(plan.payment.amount, plan.currency) if plan.payment else "",
                "period_start": _when(plan.payment.period_start) if plan.payment else "",
                "period_end": _when(plan.payment.period_end) if plan.payment else "",
                "unused_days": f"{plan.unused_seconds / 86400:.2f}",
                "paid_days": f"{plan.paid_seconds / 86400:.2f}",
                "priced_at": _when(form.cleaned_data["priced_at"]),
                "needs_approval": plan.payment is not None
                and refund_needs_approval(payment=plan.payment, amount=plan.refund_amount),
                "threshold": format_money(refund_approval_threshold(), plan.currency),
                "reason": form.cleaned_data["reason"],
                "refund_reason": RefundReason(form.cleaned_data["refund_reason"]).label,
            }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Cancel a subscription"),
            "subscription": subscription,
            "current_end": _when(subscription.current_period_end),
            "form": form,
            "confirm": plan is not None,
            "summary": summary,
            "change_url": reverse("admin:billing_subscription_change", args=[subscription.pk]),
        }
        return TemplateResponse(request, "admin/billing/subscription/cancel.html", context)

    def _report_cancellation(self, request: HttpRequest, subscription: Subscription, outcome: Any) -> None:
        if outcome.repeated:
            self.message_user(
                request,
                _("This form was already submitted: the subscription was canceled then."),
                messages.WARNING,
            )
        elif subscription.status in CANCELABLE_STATUSES:
            self.message_user(
                request,
                _("Canceled: access is kept until %(end)s, and the subscription does not renew.")
                % {"end": _when(subscription.current_period_end)},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, _("Canceled: access has ended."), messages.SUCCESS)
        refund = outcome.refund
        if outcome.refund_error:
            self.message_user(
                request,
                _("The refund was not made: %(why)s") % {"why": gettext(outcome.refund_error)},
                messages.ERROR,
            )
        elif refund is not None:
            money = format_money(refund.amount, refund.currency)
            text = {
                RefundStatus.AWAITING_APPROVAL: _(
                    "Refund of %(money)s waits for another staff member's approval."
                ),
                RefundStatus.PENDING: _(
                    "Refund of %(money)s is pending at Stripe; its webhook will settle it."
                ),
                RefundStatus.SUCCEEDED: _("Refunded %(money)s."),
                RefundStatus.FAILED: _("Stripe refused the refund of %(money)s: %(why)s"),
            }.get(RefundStatus(refund.status), _("Refund of %(money)s: %(why)s"))
            level = messages.ERROR if refund.status == RefundStatus.FAILED else messages.INFO
            self.message_user(request, text % {"money": money, "why": refund.failure_reason}, level)

    @admin.display(description=_("cinema user id"), ordering="account__user_id")
    def account_user_id(self, subscription: Subscription) -> str:
        return subscription.account.user_id

    @admin.display(description=_("email"), ordering="account__email")
    def account_email(self, subscription: Subscription) -> str:
        return subscription.account.email

    @admin.display(description=_("tariff"), ordering="tariff__name")
    def tariff_name(self, subscription: Subscription) -> str:
        return subscription.tariff.name

    @admin.display(description=_("price"), ordering="amount")
    def price(self, subscription: Subscription) -> str:
        return format_money(subscription.amount, subscription.currency)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Subscription], search_term: str
    ) -> tuple[QuerySet[Subscription], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(account_id__in=account_ids_matching(term))
        if (subscription_id := uuid_or_none(term)) is not None:
            match |= Q(pk=subscription_id)
        return queryset.filter(match), False
