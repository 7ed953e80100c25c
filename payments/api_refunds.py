"""Viewer endpoints for the viewer's own refunds and refund requests (read only)."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.generics import ListAPIView

from accounts.principals import viewer_of
from core.openapi import VIEWER_ERRORS
from payments.selectors_refunds import refund_list, refund_request_list
from payments.serializers import RefundOutputSerializer, RefundRequestListOutputSerializer

REFUND_EXAMPLE = {
    "id": "2a7e5c3b-8d1f-4b6a-9e0c-3f4d5a6b7c8d",
    "payment": "9b2e7c1a-0f3d-4e5a-8c6b-1d2e3f4a5b6c",
    "amount": 39900,
    "currency": "RUB",
    "status": "succeeded",
    "created_at": "2026-11-04T09:30:00Z",
    "succeeded_at": "2026-11-04T09:30:02Z",
}

REFUND_REQUEST_EXAMPLES = {
    "Approved": {
        "id": "5d0a8f7e-2c4b-4e1a-9f3d-7b6c5a4e3d21",
        "payment": "9b2e7c1a-0f3d-4e5a-8c6b-1d2e3f4a5b6c",
        "payment_amount": 39900,
        "currency": "RUB",
        "reason": "I was charged after I canceled.",
        "status": "approved",
        "created_at": "2026-11-03T12:00:00Z",
        "decided_at": "2026-11-04T09:30:00Z",
        "decision_note": "",
        "refund": {k: v for k, v in REFUND_EXAMPLE.items() if k != "payment"},
    },
    "Rejected": {
        "id": "6e1b9a8f-3d5c-4f2b-8a4e-8c7d6b5a4f32",
        "payment": "1c3e5a7b-9d2f-4b6a-8c0e-2d4f6a8b0c1e",
        "payment_amount": 39900,
        "currency": "RUB",
        "reason": "I did not watch anything this month.",
        "status": "rejected",
        "created_at": "2026-10-20T18:00:00Z",
        "decided_at": "2026-10-21T10:00:00Z",
        "decision_note": "The month was watched; we cannot refund it.",
        "refund": None,
    },
    "Open": {
        "id": "7f2c0b9a-4e6d-4a3c-9b5f-9d8e7c6b5a43",
        "payment": "3e5a7c9b-1d2f-4c6a-8e0b-4f6a8c0d2e3f",
        "payment_amount": 39900,
        "currency": "RUB",
        "reason": "Charged twice.",
        "status": "open",
        "created_at": "2026-11-05T08:00:00Z",
        "decided_at": None,
        "decision_note": "",
        "refund": None,
    },
}


@extend_schema(
    tags=["payments"],
    summary="List the caller's refunds, newest first",
    description=(
        "Every refund of the caller's payments, whoever started it (support, an approved refund "
        "request, an automatic refund of a charge with nothing to pay for). `status` is `pending` "
        "until the money is on its way back (`succeeded`, with `succeeded_at`), or `failed` / "
        "`canceled`. Each payment also lists its refunds (`GET /payments/`)."
    ),
    responses={200: RefundOutputSerializer(many=True), **VIEWER_ERRORS},
    # An example of a list is one item: drf-spectacular wraps it in the paginated shape.
    examples=[OpenApiExample("Succeeded", value=REFUND_EXAMPLE, response_only=True)],
)
class RefundListApi(ListAPIView):
    serializer_class = RefundOutputSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return refund_list(account=viewer_of(self.request).account)


@extend_schema(
    tags=["payments"],
    summary="List the caller's refund requests, newest first",
    description=(
        "The requests the caller made (`POST /payments/{id}/refund-request/`) and how support "
        "decided them: `open`, `approved` (with the refund it started) or `rejected` (with "
        "support's reason in `decision_note`)."
    ),
    responses={200: RefundRequestListOutputSerializer(many=True), **VIEWER_ERRORS},
    examples=[
        OpenApiExample(name, value=example, response_only=True)
        for name, example in REFUND_REQUEST_EXAMPLES.items()
    ],
)
class RefundRequestListApi(ListAPIView):
    serializer_class = RefundRequestListOutputSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return refund_request_list(account=viewer_of(self.request).account)
