"""Support's goodwill extension of a subscription: the form, a confirmation page, then the extension."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.admin.forms import ExtendForm
from billing.admin.support_pages import (
    subscription_change_url,
    subscription_for_staff,
    subscription_form_page,
    when_display,
)
from billing.models import Subscription
from billing.services import EXTENDABLE_STATUSES, subscription_extend, subscription_extension_plan
from core.errors import DomainError

EXTEND_PERMISSION = "billing.extend_subscription"


def subscription_extend_page(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Extend a subscription as goodwill: the form, a confirmation page, then the extension."""
    subscription = subscription_for_staff(request, object_id, permission=EXTEND_PERMISSION)
    change_url = subscription_change_url(subscription)
    # Checked for every request: a form left open may be sent after the subscription changed.
    if subscription.status not in EXTENDABLE_STATUSES or subscription.current_period_end is None:
        model_admin.message_user(
            request,
            _("Only a trialing or active subscription can be extended."),
            messages.WARNING,
        )
        return HttpResponseRedirect(change_url)
    if request.method != "POST":
        form = ExtendForm(initial={"period_end": subscription.current_period_end.isoformat()})
        return _extend_page(model_admin, request, subscription, form, confirm=False)
    form = ExtendForm(request.POST)
    if not form.is_valid():
        return _extend_page(model_admin, request, subscription, form, confirm=False)
    if request.POST.get("confirm") != "yes":
        return _extend_page(model_admin, request, subscription, form, confirm=True)
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
        return _extend_page(model_admin, request, subscription, form, confirm=False)
    model_admin.message_user(
        request,
        ngettext(
            "Extended by %(days)d day as goodwill: the period now ends on %(end)s.",
            "Extended by %(days)d days as goodwill: the period now ends on %(end)s.",
            form.cleaned_data["days"],
        )
        % {"days": form.cleaned_data["days"], "end": when_display(extended.current_period_end)},
        messages.SUCCESS,
    )
    return HttpResponseRedirect(change_url)


def _extend_page(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    subscription: Subscription,
    form: ExtendForm,
    *,
    confirm: bool,
) -> TemplateResponse:
    summary: dict[str, Any] = {}
    if confirm:
        plan = subscription_extension_plan(subscription=subscription, days=form.cleaned_data["days"])
        summary = {
            "days": form.cleaned_data["days"],
            "reason": form.cleaned_data["reason"],
            "new_end": when_display(plan.period_end),
            "next_period_end": when_display(plan.next_period_end),
            "renews": subscription.autopay and not subscription.cancel_at_period_end,
        }
    return subscription_form_page(
        model_admin,
        request,
        subscription,
        template="admin/billing/subscription/extend.html",
        title=_("Extend a subscription (goodwill)"),
        form=form,
        confirm=confirm,
        summary=summary,
    )
