"""Who may call what: viewers their own data, internal services the internal endpoints."""

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.principals import InternalService, Viewer

if TYPE_CHECKING:  # rest_framework.views imports the permission classes from settings
    from rest_framework.views import APIView


class IsViewer(BasePermission):
    message = "Sign in with the cinema's token to use this endpoint."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        return isinstance(request.user, Viewer)


class IsInternalService(BasePermission):
    message = "This endpoint is for the cinema's internal services."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        return isinstance(request.user, InternalService)
