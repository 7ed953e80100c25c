"""The reconciliation report's admin page: a range of UTC days against one provider's records.

Reached from the payments changelist (`PaymentAdmin.reconciliation_report_view`). The range
comes from the query string: `date_from` and `date_to` (both included; either alone is one
day), or `day` for one day as before. With none, the page opens on the last day that had
activity with us, so it shows something even when the last days were quiet. Where more than one
provider is configured, `provider` chooses whose records to compare with (default: the one new
payments go through); with one, there is nothing to choose and the page offers no choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.days import day_parse
from core.replica import replica_reads
from payments.gateways import configured_providers, default_provider
from payments.gateways.errors import GatewayError
from payments.services.daily_report import (
    ReconciliationReport,
    ReportRangeError,
    provider_label,
    reconciliation_last_active_day,
    reconciliation_report,
)


def report_provider(query: Mapping[str, str]) -> str:
    """Return the provider asked for in the query string, else the default; raise ReportRangeError if unknown."""
    asked = query.get("provider", "").strip()
    if not asked:
        return default_provider()
    if asked not in configured_providers():
        raise ReportRangeError(_("Choose one of the payment providers listed."))
    return asked


def report_range(query: Mapping[str, str], *, provider: str | None = None) -> tuple[date, date]:
    """Return the range asked for in the query string; raise ReportRangeError if a day is malformed."""
    raw_from = query.get("date_from", "").strip() or query.get("day", "").strip()
    raw_to = query.get("date_to", "").strip() or raw_from
    raw_from = raw_from or raw_to
    if not raw_from:
        day = reconciliation_last_active_day(provider=provider)
        return day, day
    try:
        return day_parse(raw_from), day_parse(raw_to)
    except ValueError as exc:
        raise ReportRangeError(_("Enter the day as YYYY-MM-DD.")) from exc


def reconciliation_report_page(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """Show the totals and every mismatch between our payments and refunds and a provider's for a range."""
    if not request.user.has_perm("payments.view_reconciliation_report"):
        raise PermissionDenied
    report: ReconciliationReport | None = None
    error = ""
    date_from = date_to = None
    provider = default_provider()
    try:
        provider = report_provider(request.GET)
        # A report changes nothing: read from the replica when there is one (core.replica).
        with replica_reads():
            date_from, date_to = report_range(request.GET, provider=provider)
            report = reconciliation_report(date_from=date_from, date_to=date_to, provider=provider)
    except ReportRangeError as exc:
        error = str(exc)
    except GatewayError as exc:
        # The page says what failed instead of a 500: the usual cause is the provider being
        # unreachable for a moment, and reloading is the remedy.
        error = _("Could not read %(provider)s's records for %(day)s: %(error)s. Try again in a moment.") % {
            "provider": provider_label(provider),
            "day": _range_text(date_from, date_to),
            "error": exc.message,
        }
    title: str
    if date_from is not None and date_to is not None and date_from != date_to:
        title = _("Reconciliation report for %(from)s to %(to)s (UTC)") % {
            "from": date_from.isoformat(),
            "to": date_to.isoformat(),
        }
    elif date_from is not None:
        title = _("Reconciliation report for %(day)s (UTC)") % {"day": date_from.isoformat()}
    else:
        title = str(_("Reconciliation report"))
    providers = sorted(configured_providers())
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        # What the form shows again: the range reported on, or what was typed if it was refused.
        "date_from": date_from.isoformat() if date_from else request.GET.get("date_from", ""),
        "date_to": date_to.isoformat() if date_to else request.GET.get("date_to", ""),
        "provider": provider,
        "provider_label": provider_label(provider),
        # A choice only where there is one to make.
        "provider_choices": [(name, provider_label(name)) for name in providers]
        if len(providers) > 1
        else [],
        "report": report,
        "error": error,
        "changelist_url": reverse("admin:payments_payment_changelist"),
    }
    return TemplateResponse(request, "admin/payments/payment/reconciliation_report.html", context)


def _range_text(date_from: date | None, date_to: date | None) -> str:
    if date_from is None or date_to is None:
        return ""
    if date_from == date_to:
        return date_from.isoformat()
    return f"{date_from.isoformat()}/{date_to.isoformat()}"  # an ISO 8601 interval
