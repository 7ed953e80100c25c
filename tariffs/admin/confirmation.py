"""The page that asks a manager to confirm a change to the catalogue before it is saved."""

from typing import Any

from django import forms
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

# The name of the button on the confirmation page; a POST without it is asked to confirm.
CONFIRM_FIELD = "_confirmed"


class ConfirmChangesMixin:
    """Ask to confirm some changes on a page of their own before the admin saves them.

    The confirmation page posts the same data again with CONFIRM_FIELD, as the refund form
    does; the admin then validates and saves it as usual. `changes_to_confirm` says what a
    valid submission would change that needs confirming (nothing: saved at once).
    """

    confirm_template = "admin/tariffs/confirm_changes.html"

    def changes_to_confirm(self, form: forms.ModelForm, before: dict[str, Any] | None) -> list[str]:
        raise NotImplementedError

    def confirm_snapshot(self, obj: Any) -> dict[str, Any]:
        """Return what the confirmation compares a submission with (the stored row's values)."""
        raise NotImplementedError

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST" and CONFIRM_FIELD not in request.POST:
            page = self._confirmation_page(request, object_id)
            if page is not None:
                return page
        return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def confirmation_page(
        self, request: HttpRequest, *, changes: list[str], posted: list[tuple[str, str]], original: Any = None
    ) -> TemplateResponse:
        """Return the page listing `changes`, whose button posts `posted` again with CONFIRM_FIELD."""
        model_admin: Any = self
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": _("Please confirm"),
            "original": original,
            "changes": changes,
            "posted": posted,
            "confirm_field": CONFIRM_FIELD,
            "action_url": request.get_full_path(),
        }
        return TemplateResponse(request, self.confirm_template, context)

    def _confirmation_page(self, request: HttpRequest, object_id: str | None) -> HttpResponse | None:
        """Return the page asking to confirm a valid submission, or None to let the admin handle it."""
        model_admin: Any = self
        obj = model_admin.get_object(request, unquote(object_id)) if object_id else None
        allowed = (
            model_admin.has_change_permission(request, obj)
            if object_id
            else model_admin.has_add_permission(request)
        )
        # Unknown rows, missing permissions and invalid forms: the admin answers as it does.
        if (object_id and obj is None) or not allowed:
            return None
        before = None if obj is None else self.confirm_snapshot(obj)
        form_class = model_admin.get_form(request, obj, change=obj is not None)
        form = form_class(request.POST, request.FILES, instance=obj)
        if not form.is_valid():
            return None
        changes = [str(change) for change in self.changes_to_confirm(form, before)]
        if not changes:
            return None
        posted = [
            (name, value)
            for name, values in request.POST.lists()
            if name != "csrfmiddlewaretoken"
            for value in values
        ]
        return self.confirmation_page(request, changes=changes, posted=posted, original=obj)
