"""Building blocks shared by the admin modules of every app."""

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Offer no add, change or delete: rows are written by services, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
