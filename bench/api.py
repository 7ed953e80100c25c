"""The framework's floor: what serving any request costs before the endpoint does any work."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

FLOOR_BODY = {"has_access": False, "subscription": None}


@extend_schema(exclude=True)
class FloorApi(APIView):
    """Answer a constant small JSON body: no authentication, no permission, no database."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(FLOOR_BODY)

    def post(self, request: Request) -> Response:
        """Answer the same body to a POST, whatever it carried (bench/webhooks' floor)."""
        return Response(FLOOR_BODY)


@extend_schema(exclude=True)
class AccessCacheStatsApi(APIView):
    """Answer this worker's access cache counters, for the benchmark's hit rate."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        import os

        from billing.access_cache import access_cache

        cache = access_cache()
        stats = cache.stats if cache is not None else None
        return Response(
            {
                "pid": os.getpid(),
                "hits": stats.hits if stats else 0,
                "misses": stats.misses if stats else 0,
                "refused": stats.refused if stats else 0,
                "entries": len(cache) if cache is not None else 0,
            }
        )
