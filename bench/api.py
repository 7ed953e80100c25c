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
