"""Describe the two authentication schemes in the OpenAPI schema.

Both authenticators run on every API view, but each view's permission admits one kind of
caller only: a viewer endpoint refuses a service key (403), the internal endpoint a JWT. So
each operation lists only the scheme its permission accepts.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from accounts.permissions import IsInternalService, IsViewer


def _permits(auto_schema: Any, permission: type) -> bool:
    """Return whether the operation's view admits the callers `permission` admits."""
    permissions = auto_schema.view.get_permissions()
    kinds = (IsViewer, IsInternalService)
    if not any(isinstance(p, kinds) for p in permissions):
        return True  # a view that does not say who it is for: document what authenticates
    return any(isinstance(p, permission) for p in permissions)


class ViewerJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ViewerJWTAuthentication"
    name = "ViewerJWT"

    def get_security_requirement(self, auto_schema: Any) -> Any:
        return super().get_security_requirement(auto_schema) if _permits(auto_schema, IsViewer) else None

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "The cinema auth service's token: `sub` (the cinema user id) and `exp` required; "
                "`email` optional; `locale` optional (`ru…` for Russian, anything else English): "
                "the language of the viewer's emails."
            ),
        }


class ServiceKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ServiceKeyAuthentication"
    name = "ServiceKey"

    def get_security_requirement(self, auto_schema: Any) -> Any:
        if _permits(auto_schema, IsInternalService):
            return super().get_security_requirement(auto_schema)
        return None

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "X-Service-Key"}
