"""Stripe-shaped API errors raised by the sandbox and turned into JSON responses."""

from typing import Any

Obj = dict[str, Any]


class StripeError(Exception):
    """An error answered to the client in Stripe's `{"error": {...}}` envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: Obj | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.extra = extra or {}

    def body(self) -> Obj:
        """Return the JSON body Stripe would answer with."""
        error: Obj = {"message": self.message, "type": self.type}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = doc_url(self.code)
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def doc_url(code: str) -> str:
    """Return the documentation address Stripe attaches to an error code."""
    return "https://stripe.com/docs/error-codes/" + code.replace("_", "-")


def invalid(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeError:
    """Return a 400 invalid_request_error."""
    return StripeError(status, message, code=code, param=param)


def missing_param(name: str) -> StripeError:
    """Return the error Stripe gives when a required parameter is absent."""
    return invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")


def unknown_param(name: str) -> StripeError:
    """Return the error Stripe gives for a parameter its API does not have."""
    return invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def resource_missing(label: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    """Return Stripe's "No such ..." error; 404 for the path's object, 400 for a referenced one."""
    return StripeError(status, f"No such {label}: '{object_id}'", code="resource_missing", param=param)
