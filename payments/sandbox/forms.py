"""Parse Stripe's form encoding (`a[b][0][c]=v`) and read typed parameters from it.

The SDK sends every request as `application/x-www-form-urlencoded` with bracket
notation; the sandbox turns it back into the nested dicts and lists Stripe's API
documents, and validates values with Stripe's own error messages so the gateway
sees the failures it would see in production.
"""

import re
from collections.abc import Iterable
from typing import Any

from payments.sandbox.errors import invalid, missing_param, unknown_param

Obj = dict[str, Any]

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_form(pairs: Iterable[tuple[str, str]]) -> Obj:
    """Return the nested parameters encoded by `pairs` (from `urllib.parse.parse_qsl`)."""
    root: Obj = {}
    for name, value in pairs:
        match = _NAME.match(name)
        if not match:
            raise invalid(f"Invalid parameter name: {name}", param=name)
        parts = [match.group(1), *_PART.findall(match.group(2))]
        node = root
        for position, part in enumerate(parts):
            key = part if part != "" else str(_next_index(node))
            if position == len(parts) - 1:
                if isinstance(node.get(key), dict):
                    raise invalid(f"Invalid hash for {name}", param=name)
                node[key] = value
                continue
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                # `metadata=` (unset) followed by `metadata[k]=v` is still a hash.
                if child == "":
                    child = node[key] = {}
                else:
                    raise invalid(f"Invalid hash for {name}", param=name)
            node = child
    return {key: _listify(value) for key, value in root.items()}


def _next_index(node: Obj) -> int:
    # `expand[]=a&expand[]=b` appends, as Rails-style parsers (and Stripe) do.
    return sum(1 for key in node if key.isdigit())


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _listify(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def check_known(params: Obj, allowed: Iterable[str], *, prefix: str = "") -> None:
    """Refuse parameters the real endpoint does not have, as Stripe does."""
    allowed_set = set(allowed)
    for key in params:
        if key not in allowed_set:
            raise unknown_param(f"{prefix}[{key}]" if prefix else key)


def hash_param(params: Obj, name: str, *, label: str | None = None) -> Obj:
    """Return a nested hash parameter, `{}` when absent or unset with an empty string."""
    value = params.get(name)
    if value is None or value == "":
        return {}
    if isinstance(value, list):
        # `x[0]=a` parses as a list; inside a hash the digits are plain keys.
        return {str(index): item for index, item in enumerate(value)}
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {label or name}", param=label or name)
    return value


def list_param(params: Obj, name: str, *, label: str | None = None) -> list[Any]:
    """Return an array parameter, `[]` when absent."""
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        # `expand=payment_intent` without brackets: Stripe accepts a lone value too.
        return [value]
    raise invalid(f"Invalid array: {label or name}", param=label or name)


def str_param(params: Obj, name: str, *, required: bool = False, label: str | None = None) -> str | None:
    """Return a string parameter, or None when absent and optional."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(label or name)
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {label or name}", param=label or name)
    if len(value) > 5000:
        raise invalid(f"Invalid string: {label or name} must be at most 5000 characters", param=label or name)
    return value


def int_param(
    params: Obj, name: str, *, required: bool = False, minimum: int | None = None, label: str | None = None
) -> int | None:
    """Return an integer parameter, with Stripe's "Invalid integer" error for junk."""
    label = label or name
    raw = str_param(params, name, required=required, label=label)
    if raw is None:
        return None
    if not re.fullmatch(r"-?\d+", raw):
        raise invalid(f"Invalid integer: {raw}", param=label, code="parameter_invalid_integer")
    value = int(raw)
    if minimum is not None and value < minimum:
        raise invalid(
            f"This value must be greater than or equal to {minimum}.",
            param=label,
            code="parameter_invalid_integer",
        )
    return value


def bool_param(params: Obj, name: str, *, label: str | None = None) -> bool | None:
    """Return a boolean parameter (`true`/`false`), or None when absent."""
    raw = str_param(params, name, label=label)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise invalid(f"Invalid boolean: {raw}", param=label or name)
    return raw == "true"


def choice_param(
    params: Obj, name: str, choices: Iterable[str], *, required: bool = False, label: str | None = None
) -> str | None:
    """Return a string parameter that must be one of `choices`."""
    options = list(choices)
    value = str_param(params, name, required=required, label=label)
    if value is not None and value not in options:
        raise invalid(
            f"Invalid {label or name}: must be one of {', '.join(options)}",
            param=label or name,
        )
    return value


def metadata_param(params: Obj, name: str = "metadata", *, label: str | None = None) -> dict[str, str]:
    """Return metadata, checked against Stripe's limits (50 keys, 40-char keys, 500-char values)."""
    label = label or name
    metadata = hash_param(params, name, label=label)
    if len(metadata) > 50:
        raise invalid("Metadata can have at most 50 keys.", param=label)
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise invalid(f"Invalid value for {label}[{key}]: nested metadata is not allowed.", param=label)
        if len(key) > 40:
            raise invalid(f"Metadata keys can be at most 40 characters: {key}", param=f"{label}[{key}]")
        if len(value) > 500:
            raise invalid(f"Metadata values can be at most 500 characters: {key}", param=f"{label}[{key}]")
    # Setting a key to "" removes it in Stripe; on creation that means "not set".
    return {key: value for key, value in metadata.items() if value != ""}


def currency_param(params: Obj, name: str, *, required: bool = False, label: str | None = None) -> str | None:
    """Return a lower-cased three-letter ISO currency code."""
    value = str_param(params, name, required=required, label=label)
    if value is None:
        return None
    if not re.fullmatch(r"[A-Za-z]{3}", value):
        raise invalid(f"Invalid currency: {value}", param=label or name)
    return value.lower()
