"""Viewer endpoints for payments."""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.principals import viewer_of
from core.errors import DomainError, NotFound
from core.metrics import record_webhook_rejected
from core.openapi import NOT_FOUND, VIEWER_ERRORS, domain_errors_response, error_response
from core.validation import validated
from payments.gateways import configured_providers, get_gateway
from payments.gateways.errors import InvalidWebhookSignature
from payments.selectors import payment_get, payment_list
from payments.serializers import (
    CheckoutStatusOutputSerializer,
    PaymentOutputSerializer,
    RefundRequestInputSerializer,
    RefundRequestOutputSerializer,
)
from payments.services.checkout import checkout_status
from payments.services.refunds.rules import PaymentNotRefundable
from payments.services.refunds.viewer_requests import (
    RefundRequestExists,
    RefundWindowClosed,
    refund_request_create,
)
from payments.services.webhooks import WebhookEventUnstorable, webhook_event_record
from payments.webhook_senders import webhook_sender_allowed

PAYMENT_EXAMPLE = {
    "id": "9b2e7c1a-0f3d-4e5a-8c6b-1d2e3f4a5b6c",
    "subscription": "3f1c2a9e-5d1b-4c47-9a0e-2b8f6d7c1e55",
    "kind": "initial",
    "status": "succeeded",
    "provider": "yookassa",
    "receipt_status": "succeeded",
    "amount": 39900,
    "currency": "RUB",
    "refunded_amount": 0,
    "period_start": "2026-11-01T10:00:00Z",
    "period_end": "2026-12-01T10:00:00Z",
    "failure_code": "",
    "failure_message": "",
    "paid_at": "2026-11-01T10:00:03Z",
    "created_at": "2026-11-01T09:58:12Z",
    "refunds": [],
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
            raise NotFound("No such payment.")
        return Response(PaymentOutputSerializer(payment).data)


class WebhookSignatureInvalid(DomainError):
    code = "invalid_signature"
    message = "The provider's signature header does not match this body."
    status_code = 400


class StripeWebhookSignatureInvalid(WebhookSignatureInvalid):
    message = "The Stripe-Signature header does not match this body."


class StripeWebhookEventUnstorable(WebhookEventUnstorable):
    message = "The body is signed, but not a Stripe event this service can read and store."


class WebhookSenderNotAllowed(DomainError):
    code = "sender_not_allowed"
    message = "This provider's notifications are accepted only from its published addresses."
    status_code = 403


def _refusal_reason(exc: InvalidWebhookSignature) -> str:
    # The metric's label: one of two codes, whatever a provider's package sets.
    return "invalid_payload" if exc.code == "invalid_payload" else "invalid_signature"


_WEBHOOK_ACK = inline_serializer(
    "WebhookAck", {"received": serializers.BooleanField(), "duplicate": serializers.BooleanField()}
)
_WEBHOOK_EXAMPLES = [
    OpenApiExample("Stored", value={"received": True, "duplicate": False}, response_only=True)
]


@extend_schema(
    tags=["webhooks"],
    summary="Receive a payment provider's events",
    description=(
        "One endpoint per provider (`/api/v1/webhooks/stripe/`, `/api/v1/webhooks/yookassa/`). "
        "The signature is verified on the raw body in the provider's way; YooKassa signs nothing, "
        "so its notifications are accepted only from `YOOKASSA_NOTIFICATION_IPS` (its published "
        "ranges) and only ever read again from its API by id. Each event is stored once and "
        "processed by a worker."
    ),
    request=None,
    responses={
        200: _WEBHOOK_ACK,
        400: domain_errors_response(
            400,
            "Not signed by the provider, or signed but not a storable event of it",
            WebhookSignatureInvalid,
            WebhookEventUnstorable,
        ),
        403: domain_errors_response(
            403,
            "Posted from outside the addresses of a provider that signs nothing (YooKassa)",
            WebhookSenderNotAllowed,
        ),
        404: NOT_FOUND,
    },
    examples=_WEBHOOK_EXAMPLES,
)
class ProviderWebhookApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []
    # Fixed by a provider's own route; otherwise the `provider` part of the URL names it.
    provider = ""
    signature_invalid: type[WebhookSignatureInvalid] = WebhookSignatureInvalid
    event_unstorable: type[WebhookEventUnstorable] = WebhookEventUnstorable

    def post(self, request: Request, provider: str = "") -> Response:
        name = self.provider or provider
        if name not in configured_providers():
            raise NotFound()
        if not webhook_sender_allowed(provider=name, request=request):
            record_webhook_rejected(provider=name, reason=WebhookSenderNotAllowed.code)
            raise WebhookSenderNotAllowed()
        gateway = get_gateway(name)
        signature = request.headers.get(gateway.webhook_signature_header, "")
        try:
            event = gateway.parse_webhook(request.body, signature)
        except InvalidWebhookSignature as exc:
            record_webhook_rejected(provider=name, reason=_refusal_reason(exc))
            if exc.code == "invalid_payload":
                # Signed with our secret, so the sender may hear what is wrong with it.
                raise self.event_unstorable(details={"reason": str(exc)}) from exc
            raise self.signature_invalid() from exc
        # Stored, then queued after the commit; with the broker down it is still acknowledged.
        _, created = webhook_event_record(provider=name, event=event)
        return Response({"received": True, "duplicate": not created})


@extend_schema(
    tags=["webhooks"],
    summary="Receive Stripe events",
    description=(
        "Stripe's webhook endpoint. The signature is verified on the raw body (5-minute "
        "tolerance); each event is stored once and processed by a worker."
    ),
    request=None,
    responses={
        200: _WEBHOOK_ACK,
        400: domain_errors_response(
            400,
            "Not signed by Stripe, or signed but not a storable Stripe event",
            StripeWebhookSignatureInvalid,
            StripeWebhookEventUnstorable,
        ),
    },
    examples=_WEBHOOK_EXAMPLES,
)
class StripeWebhookApi(ProviderWebhookApi):
    """Stripe's own route: the same handling, in Stripe's words (its schema is unchanged)."""

    provider = "stripe"
    signature_invalid = StripeWebhookSignatureInvalid
    event_unstorable = StripeWebhookEventUnstorable


CHECKOUT_STATUS_EXAMPLE = {
    "id": "0c6a3f0e-7f4f-4a51-9d1e-6f4b1b9b2a10",
    "status": "complete",
    "payment_status": "succeeded",
    "subscription_status": "active",
    "failure_code": "",
    "failure_message": "",
}


@extend_schema(
    tags=["checkout"],
    summary="How a checkout ended (the result page polls this)",
    description=(
        "Public: the checkout id in the return URL is the only key. While the checkout is open "
        "the service re-reads it from Stripe, so a lost webhook never leaves the page waiting."
    ),
    responses={200: CheckoutStatusOutputSerializer, 404: NOT_FOUND},
    examples=[OpenApiExample("Paid", value=CHECKOUT_STATUS_EXAMPLE, response_only=True)],
)
class CheckoutStatusApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request, checkout_id: UUID) -> Response:
        checkout = checkout_status(checkout_id=checkout_id)
        if checkout is None:
            raise NotFound("No such checkout.")
        return Response(CheckoutStatusOutputSerializer(checkout).data)


REFUND_REQUEST_EXAMPLE = {
    "id": "5d0a8f7e-2c4b-4e1a-9f3d-7b6c5a4e3d21",
    "payment": PAYMENT_EXAMPLE["id"],
    "reason": "I was charged after I canceled.",
    "status": "open",
    "created_at": "2026-11-03T12:00:00Z",
}


@extend_schema(
    tags=["payments"],
    summary="Ask for one of the caller's payments back",
    description=(
        "Opens a refund request that support approves (the rest of the payment is refunded) or "
        "rejects (the viewer is emailed the reason). Only within `REFUND_REQUEST_WINDOW_DAYS` "
        "(default 14) of the payment, for a paid payment with something left to refund, and one "
        "open request per payment."
    ),
    request=RefundRequestInputSerializer,
    responses={
        201: RefundRequestOutputSerializer,
        400: domain_errors_response(
            400, "Too late, or nothing to refund", RefundWindowClosed, PaymentNotRefundable
        ),
        404: NOT_FOUND,
        409: error_response("refund_request_exists", RefundRequestExists.message, "Already asked"),
        **VIEWER_ERRORS,
    },
    examples=[
        OpenApiExample("Reason", value={"reason": "I was charged after I canceled."}, request_only=True),
        OpenApiExample("Opened", value=REFUND_REQUEST_EXAMPLE, response_only=True, status_codes=["201"]),
    ],
)
class PaymentRefundRequestApi(APIView):
    def post(self, request: Request, payment_id: UUID) -> Response:
        data = validated(RefundRequestInputSerializer, request.data)
        refund_request = refund_request_create(
            account=viewer_of(request).account, payment_id=payment_id, reason=data["reason"]
        )
        return Response(RefundRequestOutputSerializer(refund_request).data, status=201)
