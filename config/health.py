"""Liveness and readiness probes for the orchestrator."""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

BROKER_TIMEOUT_SECONDS = 2


def healthz(request: HttpRequest) -> JsonResponse:
    """Answer while the process can serve requests at all."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=BROKER_TIMEOUT_SECONDS,
        ) as broker:
            broker.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
        return True
    except Exception:
        return False


def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database and the Celery broker are reachable, 503 otherwise."""
    checks = {
        "database": "ok" if _database_ok() else "unreachable",
        "broker": "ok" if _broker_ok() else "unreachable",
    }
    ready = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
