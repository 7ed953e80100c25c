"""Viewer endpoints for the card on file: read it, and get a provider page that replaces it."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.principals import viewer_of
from core.errors import SERVICE_UNAVAILABLE_MESSAGE, error_body
from core.openapi import VIEWER_ERRORS, ErrorSerializer, error_response
from payments.serializers import PaymentMethodOutputSerializer, PaymentMethodUpdateOutputSerializer
from payments.services.payment_method import (
    NoPaymentMethod,
    NoSubscriptionForCard,
    payment_method_get,
    payment_method_update_start,
)
from payments.services.subscribe import PaymentProviderUnavailable, ReceiptEmailRequired

PAYMENT_METHOD_EXAMPLE = {
    "provider": "stripe",
    "brand": "visa",
    "last4": "4242",
    "exp_month": 12,
    "exp_year": 2030,
}


@extend_schema(
    tags=["payment method"],
    summary="The card the caller's renewals charge",
    description=(
        "The card saved at the provider of the caller's running subscription (without one, the "
        "card saved last), as far as the provider lets us show it: never the number."
    ),
    responses={
        200: PaymentMethodOutputSerializer,
        404: error_response(NoPaymentMethod.code, NoPaymentMethod.message, "No card is saved"),
        **VIEWER_ERRORS,
    },
    examples=[OpenApiExample("Visa", value=PAYMENT_METHOD_EXAMPLE, response_only=True)],
)
class PaymentMethodApi(APIView):
    def get(self, request: Request) -> Response:
        saved = payment_method_get(account=viewer_of(request).account)
        if saved is None:
            raise NoPaymentMethod()
        return Response(PaymentMethodOutputSerializer(saved).data)


@extend_schema(
    tags=["payment method"],
    summary="Replace the card: get a provider page that saves a new one without a charge",
    description=(
        "Answers the address of a provider page (Stripe Checkout in setup mode) where the viewer "
        "enters a new card; nothing is charged, started or extended. Once the provider confirms "
        "it (webhook or the return page), renewals charge the new card, and a past-due "
        "subscription is retried with it at once. Asking again while the page is still open "
        "answers the same page. No request body."
    ),
    request=None,
    responses={
        200: PaymentMethodUpdateOutputSerializer,
        400: error_response(
            ReceiptEmailRequired.code, ReceiptEmailRequired.message, "The provider sends a receipt: no email"
        ),
        409: error_response(
            NoSubscriptionForCard.code, NoSubscriptionForCard.message, "No running subscription"
        ),
        503: OpenApiResponse(
            response=ErrorSerializer,
            description="The provider is not answering (retry: the same page is opened), or the database",
            examples=[
                OpenApiExample(
                    PaymentProviderUnavailable.code,
                    value=error_body(PaymentProviderUnavailable.code, PaymentProviderUnavailable.message),
                    response_only=True,
                    status_codes=["503"],
                ),
                OpenApiExample(
                    "service_unavailable",
                    value=error_body("service_unavailable", SERVICE_UNAVAILABLE_MESSAGE),
                    response_only=True,
                    status_codes=["503"],
                ),
            ],
        ),
        **VIEWER_ERRORS,
    },
    examples=[
        OpenApiExample(
            "Page opened",
            value={"checkout_url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3"},
            response_only=True,
        )
    ],
)
class PaymentMethodUpdateApi(APIView):
    def post(self, request: Request) -> Response:
        checkout = payment_method_update_start(account=viewer_of(request).account)
        return Response(PaymentMethodUpdateOutputSerializer(checkout).data)
