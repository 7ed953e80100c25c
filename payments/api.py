"""Viewer endpoints for payments."""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.principals import viewer_of
from billing.errors import DomainError
from billing.openapi import NOT_FOUND, VIEWER_ERRORS
from payments.selectors import payment_get, payment_list
from payments.serializers import PaymentOutputSerializer


class PaymentNotFound(DomainError):
    code = "not_found"
    message = "No such payment."
    status_code = 404


PAYMENT_EXAMPLE = {
    "id": "9b2e7c1a-0f3d-4e5a-8c6b-1d2e3f4a5b6c",
    "subscription": "3f1c2a9e-5d1b-4c47-9a0e-2b8f6d7c1e55",
    "kind": "initial",
    "status": "succeeded",
    "amount": 39900,
    "currency": "RUB",
    "refunded_amount": 0,
    "period_start": "2026-11-01T10:00:00Z",
    "period_end": "2026-12-01T10:00:00Z",
    "failure_code": "",
    "failure_message": "",
    "paid_at": "2026-11-01T10:00:03Z",
    "created_at": "2026-11-01T09:58:12Z",
}


@extend_schema(
    tags=["payments"],
    summary="List the caller's payments, newest first",
    responses={200: PaymentOutputSerializer(many=True), **VIEWER_ERRORS},
    examples=[
        OpenApiExample(
            "One payment",
            value={"count": 1, "next": None, "previous": None, "results": [PAYMENT_EXAMPLE]},
            response_only=True,
        )
    ],
)
class PaymentListApi(ListAPIView):
    serializer_class = PaymentOutputSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return payment_list(account=viewer_of(self.request).account)


@extend_schema(
    tags=["payments"],
    summary="Get one of the caller's payments",
    responses={200: PaymentOutputSerializer, 404: NOT_FOUND, **VIEWER_ERRORS},
    examples=[OpenApiExample("Paid", value=PAYMENT_EXAMPLE, response_only=True)],
)
class PaymentDetailApi(APIView):
    def get(self, request: Request, payment_id: UUID) -> Response:
        payment = payment_get(account=viewer_of(request).account, payment_id=payment_id)
        if payment is None:
            raise PaymentNotFound()
        return Response(PaymentOutputSerializer(payment).data)
