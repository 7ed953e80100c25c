"""Public catalogue endpoints."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny

from tariffs.selectors import tariff_list_active
from tariffs.serializers import TariffOutputSerializer

TARIFF_EXAMPLE = {
    "id": 1,
    "slug": "monthly",
    "name": "Monthly",
    "description": "Every film and series, billed monthly.",
    "amount": 39900,
    "currency": "RUB",
    "period": {"unit": "month", "count": 1},
    "trial_days": 0,
    "provider": "yookassa",
}


@extend_schema(
    tags=["tariffs"],
    summary="List the tariffs a viewer can subscribe to",
    examples=[
        OpenApiExample(
            "Catalogue",
            value={"count": 1, "next": None, "previous": None, "results": [TARIFF_EXAMPLE]},
            response_only=True,
        )
    ],
)
class TariffListApi(ListAPIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = TariffOutputSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return tariff_list_active()
