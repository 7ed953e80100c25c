"""The liveness and readiness probes in the OpenAPI description (they are plain Django views)."""

from typing import Any

_PROBE_TAG = "health"


def _json(description: str, example_name: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
                "examples": {example_name: {"value": example}},
            }
        },
    }


PROBES: dict[str, dict[str, Any]] = {
    "/healthz/": {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness: the process can serve requests",
            "description": "Touches neither the database nor the broker. No authentication.",
            "tags": [_PROBE_TAG],
            "security": [],
            "responses": {"200": _json("Alive", "Alive", {"status": "ok"})},
        }
    },
    "/readyz/": {
        "get": {
            "operationId": "readyz",
            "summary": "Readiness: the database and the Celery broker answer",
            "description": "503 while either is unreachable, naming which. No authentication.",
            "tags": [_PROBE_TAG],
            "security": [],
            "responses": {
                "200": _json(
                    "Ready", "Ready", {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
                ),
                "503": _json(
                    "Not ready",
                    "Broker down",
                    {"status": "unavailable", "checks": {"database": "ok", "broker": "unreachable"}},
                ),
            },
        }
    },
}


def add_probe_paths(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Add /healthz/ and /readyz/ to the schema (a drf-spectacular postprocessing hook)."""
    result.setdefault("paths", {}).update(PROBES)
    return result
