"""What support's pages on one subscription share: finding it, its links, dates, the page itself."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import Promise

from billing.models import Subscription
from core.validation import uuid_or_none


def when_display(moment: Any) -> str:
    """Return a moment as staff read it, in the admin's time zone; "-" for none."""
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else "-"


def subscription_change_url(subscription: Subscription) -> str:
    """Return the address of the subscription's admin page."""
    return reverse("admin:billing_subscription_change", args=[subscription.pk])


def subscription_for_staff(request: HttpRequest, object_id: str, *, permission: str) -> Subscription:
    """Return the subscription a support page is about, for staff holding `permission` only."""
    if not request.user.has_perm(permission):
        raise PermissionDenied
    return get_object_or_404(
        Subscription.objects.select_related("account", "tariff"), pk=uuid_or_none(object_id)
    )


def staff_may(
    request: HttpRequest, subscription: Subscription | None, *, permission: str, statuses: Collection[str]
) -> bool:
    """Return whether the staff member may act on the subscription now: its page offers the button."""
    return subscription is not None and request.user.has_perm(permission) and subscription.status in statuses


def subscription_form_page(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    subscription: Subscription,
    *,
    template: str,
    title: Promise,
    form: forms.Form,
    confirm: bool,
    summary: dict[str, Any],
) -> TemplateResponse:
    """Return a support form's page on a subscription, or its confirmation (`confirm`, with `summary`)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "subscription": subscription,
        "current_end": when_display(subscription.current_period_end),
        "form": form,
        "confirm": confirm,
        "summary": summary,
        "change_url": subscription_change_url(subscription),
    }
    return TemplateResponse(request, template, context)
