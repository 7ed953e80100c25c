"""The staff login throttle's two hooks into django-axes: who is trying, and what they see.

Settings (config/settings/base.py, "Staff login throttle") lock one username from one address
out after ADMIN_LOGIN_FAILURE_LIMIT wrong passwords, for ADMIN_LOGIN_LOCKOUT_MINUTES.
"""

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _


def client_ip(request: HttpRequest) -> str | None:
    """Return the address a login attempt comes from.

    Behind the reverse proxy every peer is the proxy, so the address is the last one the proxy
    appended to X-Forwarded-For. The header cannot be forged: config.middleware's
    TrustedProxyMiddleware removes it from every peer outside TRUSTED_PROXY_IPS, before this runs.
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
    return forwarded or request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """Answer a locked-out login with a page in the admin's look (429 Too Many Requests), in the staff's language."""
    cool_off = settings.AXES_COOLOFF_TIME
    context = {
        **admin.site.each_context(request),
        "title": _("Too many failed logins"),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": max(int(cool_off.total_seconds() // 60), 1),
    }
    # Rendered now: a response made in middleware is never rendered by Django later.
    return render(request, "admin/lockout.html", context, status=HTTPStatus.TOO_MANY_REQUESTS)
