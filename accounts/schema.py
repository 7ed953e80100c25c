"""Describe the two authentication schemes in the OpenAPI schema."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ViewerJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ViewerJWTAuthentication"
    name = "ViewerJWT"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The cinema auth service's token: `sub` and `exp` required, `email` optional.",
        }


class ServiceKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ServiceKeyAuthentication"
    name = "ServiceKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "X-Service-Key"}
