"""Support changes a viewer's plan: the form, a confirmation page with the proration, then the change.

The same service and rules as the viewer's `POST /subscriptions/{id}/change/`
(payments/services/plan_change.py): an upgrade is charged to the saved card now, prorated; a
downgrade is scheduled for the period end. The audit log records who did it and why.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.admin.support_pages import (
    subscription_change_url,
    subscription_for_staff,
    subscription_form_page,
    when_display,
)
from billing.models import Subscription, SubscriptionStatus
from billing.plan_change import PlanChangeKind, plan_change_quote
from core import clock
from core.errors import DomainError
from core.money import format_money
from payments.services.plan_change import ChangeStatus, plan_change_request
from tariffs.models import Tariff

CHANGE_PLAN_PERMISSION = "billing.change_subscription_plan"
# Support offers the button on these; the service refuses anything else with its own reasons.
CHANGEABLE_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE)


class ChangePlanForm(forms.Form):
    """What support chooses for one plan change."""

    tariff = forms.ModelChoiceField(label=_("new tariff"), queryset=Tariff.objects.none())
    reason = forms.CharField(
        label=_("reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why the plan changes; kept in the audit log."),
    )

    def __init__(self, *args: Any, subscription: Subscription, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["tariff"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101 (declared just above)
        field.queryset = Tariff.objects.filter(is_active=True, currency=subscription.currency).exclude(
            pk=subscription.tariff_id
        )


def subscription_change_plan_page(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Change a viewer's plan: the form, a confirmation page with what it costs, then the change."""
    subscription = subscription_for_staff(request, object_id, permission=CHANGE_PLAN_PERMISSION)
    change_url = subscription_change_url(subscription)
    if request.method != "POST":
        return _page(
            model_admin, request, subscription, ChangePlanForm(subscription=subscription), confirm=False
        )
    form = ChangePlanForm(request.POST, subscription=subscription)
    if not form.is_valid():
        return _page(model_admin, request, subscription, form, confirm=False)
    if request.POST.get("confirm") != "yes":
        return _page(model_admin, request, subscription, form, confirm=True)
    try:
        result = plan_change_request(
            subscription=subscription,
            tariff=form.cleaned_data["tariff"],
            actor=request.user,  # type: ignore[arg-type]
            reason=form.cleaned_data["reason"].strip(),
        )
    except DomainError as exc:
        form.add_error(None, gettext(exc.message))
        return _page(model_admin, request, subscription, form, confirm=False)
    model_admin.message_user(
        request, _outcome_message(result.status, result.amount_due, result.currency), messages.SUCCESS
    )
    return HttpResponseRedirect(change_url)


def _outcome_message(status: str, amount_due: int, currency: str) -> str:
    if status == ChangeStatus.SCHEDULED:
        return gettext("The downgrade is scheduled for the end of the current period.")
    if status == ChangeStatus.ACTION_REQUIRED:
        return gettext(
            "The viewer's bank asks them to confirm the charge of %(amount)s: the plan changes once they pay it."
        ) % {"amount": format_money(amount_due, currency)}
    if status == ChangeStatus.PROCESSING:
        return gettext("The charge is being processed: the plan changes once it succeeds.")
    return gettext("The plan has changed; %(amount)s was charged.") % {
        "amount": format_money(amount_due, currency)
    }


def _page(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    subscription: Subscription,
    form: ChangePlanForm,
    *,
    confirm: bool,
) -> TemplateResponse:
    summary: dict[str, Any] = {}
    if confirm:
        try:
            quote = plan_change_quote(
                subscription=subscription, tariff=form.cleaned_data["tariff"], at=clock.now()
            )
        except DomainError as exc:
            form.add_error(None, gettext(exc.message))
            confirm = False
        else:
            summary = {
                "upgrade": quote.kind == PlanChangeKind.UPGRADE,
                "tariff": quote.tariff.name,
                "amount_due": format_money(quote.amount_due, quote.currency),
                "price": format_money(quote.tariff.amount, quote.currency),
                "effective_at": when_display(quote.effective_at),
                "new_period_end": when_display(quote.period_end),
                "reason": form.cleaned_data["reason"],
            }
    return subscription_form_page(
        model_admin,
        request,
        subscription,
        template="admin/billing/subscription/change_plan.html",
        title=_("Change the plan"),
        form=form,
        confirm=confirm,
        summary=summary,
    )
