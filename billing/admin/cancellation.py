"""Support's cancellation of a subscription: the form, a confirmation page, then one cancellation."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.admin.forms import WHEN_NOW, WHEN_PERIOD_END, CancelForm
from billing.admin.support_pages import (
    subscription_change_url,
    subscription_for_staff,
    subscription_form_page,
    when_display,
)
from billing.models import Subscription, SubscriptionStatus
from core import clock
from core.errors import DomainError
from core.money import format_money
from payments.admin.refund_messages import refund_outcome_message
from payments.models import RefundReason
from payments.services.cancellation import (
    CANCELABLE_STATUSES,
    CancellationPlan,
    subscription_cancel_by_staff,
    subscription_cancellation_plan,
)
from payments.services.refunds.rules import refund_approval_threshold, refund_needs_approval

CANCEL_PERMISSION = "billing.cancel_subscription"
REFUND_PERMISSION = "payments.add_refund"


def subscription_cancel_page(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Cancel a subscription for a viewer: the form, a confirmation page, then one cancellation."""
    subscription = subscription_for_staff(request, object_id, permission=CANCEL_PERMISSION)
    change_url = subscription_change_url(subscription)
    may_refund = request.user.has_perm(REFUND_PERMISSION)
    confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
    # A confirmed form goes to the service whatever the status: a second submission of it
    # finds the cancellation it made (the subscription is canceled by then).
    if not confirmed and subscription.status not in CANCELABLE_STATUSES:
        model_admin.message_user(
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
        return _cancel_page(model_admin, request, subscription, form, plan=None)
    form = CancelForm(request.POST, may_refund=may_refund)
    if not form.is_valid():
        return _cancel_page(model_admin, request, subscription, form, plan=None)
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
        return _cancel_page(model_admin, request, subscription, form, plan=plan)
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
        return _cancel_page(model_admin, request, subscription, form, plan=None)
    _report_cancellation(model_admin, request, outcome.subscription, outcome)
    return HttpResponseRedirect(change_url)


def _cancel_page(
    model_admin: admin.ModelAdmin[Any],
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
            "access_until": when_display(plan.access_until),
            "refund_asked": form.cleaned_data["refund"],
            "refund": format_money(plan.refund_amount, plan.currency) if plan.refund_amount else "",
            "payment": plan.payment,
            "paid": format_money(plan.payment.amount, plan.currency) if plan.payment else "",
            "period_start": when_display(plan.payment.period_start) if plan.payment else "",
            "period_end": when_display(plan.payment.period_end) if plan.payment else "",
            "unused_days": f"{plan.unused_seconds / 86400:.2f}",
            "paid_days": f"{plan.paid_seconds / 86400:.2f}",
            "priced_at": when_display(form.cleaned_data["priced_at"]),
            "needs_approval": plan.payment is not None
            and refund_needs_approval(payment=plan.payment, amount=plan.refund_amount),
            "threshold": format_money(refund_approval_threshold(), plan.currency),
            "reason": form.cleaned_data["reason"],
            "refund_reason": RefundReason(form.cleaned_data["refund_reason"]).label,
        }
    return subscription_form_page(
        model_admin,
        request,
        subscription,
        template="admin/billing/subscription/cancel.html",
        title=_("Cancel a subscription"),
        form=form,
        confirm=plan is not None,
        summary=summary,
    )


def _report_cancellation(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, subscription: Subscription, outcome: Any
) -> None:
    if outcome.repeated:
        model_admin.message_user(
            request,
            _("This form was already submitted: the subscription was canceled then."),
            messages.WARNING,
        )
    elif subscription.status in CANCELABLE_STATUSES:
        model_admin.message_user(
            request,
            _("Canceled: access is kept until %(end)s, and the subscription does not renew.")
            % {"end": when_display(subscription.current_period_end)},
            messages.SUCCESS,
        )
    else:
        model_admin.message_user(request, _("Canceled: access has ended."), messages.SUCCESS)
    refund = outcome.refund
    if outcome.refund_error:
        model_admin.message_user(
            request,
            _("The refund was not made: %(why)s") % {"why": gettext(outcome.refund_error)},
            messages.ERROR,
        )
    elif refund is not None:
        level, text = refund_outcome_message(refund)
        model_admin.message_user(request, text, level)
