"""The journal's export page: a range of UTC days and a format, answered with the file.

For holders of `ledger.export_journalentry` only. The form is sent by GET: an export reads and
changes nothing, and its address can be bookmarked for the monthly close.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from ledger.admin.reports import EXPORT_PERMISSION
from ledger.exports import JournalExportForm, journal_export_response


def journal_export_page(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    """Show the export form; once it is filled in, answer with the entries' postings as a file."""
    if not request.user.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied
    form = JournalExportForm(request.GET if "date_from" in request.GET else None)
    if form.is_bound and form.is_valid():
        return journal_export_response(
            date_from=form.cleaned_data["date_from"],
            date_to=form.cleaned_data["date_to"],
            file_format=form.cleaned_data["file_format"],
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Export journal entries"),
        "form": form,
        "changelist_url": reverse("admin:ledger_journalentry_changelist"),
    }
    return TemplateResponse(request, "admin/ledger/export.html", context)
