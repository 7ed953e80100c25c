"""Viewer endpoints for subscriptions: list and subscribe, one subscription, its payments."""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import BillingAccount
from accounts.principals import viewer_of
from billing.idempotency import (
    IdempotencyKeyReused,
    idempotent_answer_store,
    idempotent_request_release,
    idempotent_request_reserve,
    request_fingerprint,
    validate_key,
)
from billing.models import Subscription
from billing.promotions import PROMO_CODE_ERRORS
from billing.serializers import (
    SubscribeInputSerializer,
    SubscribeOutputSerializer,
    SubscriptionOutputSerializer,
)
from core.errors import DomainError, LiveSubscriptionExists, NotFound, TariffUnavailable, error_body
from core.openapi import NOT_FOUND, VIEWER_ERRORS, ErrorSerializer, error_response
from core.validation import validated
from payments.api import PAYMENT_EXAMPLE
from payments.selectors import payment_list_for_subscription, subscription_get, subscription_list
from payments.serializers import PaymentOutputSerializer
from payments.services.subscribe import PaymentProviderUnavailable, ReceiptEmailRequired, subscribe
from tariffs.models import Tariff
from tariffs.selectors import tariff_get_by_reference

SUBSCRIPTION_EXAMPLE = {
    "id": "3f1c2a9e-5d1b-4c47-9a0e-2b8f6d7c1e55",
    "status": "active",
    "tariff": {"id": 1, "slug": "monthly", "name": "Monthly"},
    "amount": 39900,
    "currency": "RUB",
    "autopay": True,
    "cancel_at_period_end": False,
    "current_period_start": "2026-11-01T10:00:00Z",
    "current_period_end": "2026-12-01T10:00:00Z",
    "trial_end": None,
    "next_renewal_attempt_at": None,
    "payment_action_url": None,
    # A promo code's 20% off still in effect for the next period.
    "next_charge": {"amount": 31920, "currency": "RUB", "at": "2026-12-01T10:00:00Z"},
    "scheduled_change": None,
    "canceled_at": None,
    "ended_at": None,
    "created_at": "2026-11-01T09:58:12Z",
}
PENDING_SUBSCRIPTION_EXAMPLE = {
    **SUBSCRIPTION_EXAMPLE,
    "status": "pending",
    "current_period_start": None,
    "current_period_end": None,
    "payment_action_url": "https://billing.cinema.example/checkout/review/?checkout=0c6a3f0e-7f4f-4a51-9d1e-6f4b1b9b2a10",
    "next_charge": None,
}
PAST_DUE_SUBSCRIPTION_EXAMPLE = {
    **SUBSCRIPTION_EXAMPLE,
    "status": "past_due",
    "payment_action_url": "https://billing.cinema.example/pay/0b9a4c1e2d3f4a5b6c7d8e9f0a1b2c3d:q1W2e3R4t5Y6u7I8o9P0/",
    "next_charge": {"amount": 39900, "currency": "RUB", "at": None},
}
SUBSCRIBE_EXAMPLE = {
    "subscription": PENDING_SUBSCRIPTION_EXAMPLE,
    "payment": {
        **PAYMENT_EXAMPLE,
        "status": "pending",
        "paid_at": None,
        "period_start": None,
        "period_end": None,
    },
    "checkout": {
        "id": "0c6a3f0e-7f4f-4a51-9d1e-6f4b1b9b2a10",
        "mode": "payment",
        "status": "open",
        "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
        "expires_at": "2026-11-01T10:58:12Z",
    },
    "checkout_url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
}


def _error_example(error: type[DomainError], details: dict[str, str]) -> OpenApiExample:
    body = error_body(error.code, error.message, details)
    return OpenApiExample(error.code, value=body, response_only=True, status_codes=["400"])


SUBSCRIBE_BAD_REQUEST = OpenApiResponse(
    response=ErrorSerializer,
    description=(
        "Unknown or inactive tariff, a promo code that cannot be used, or a tariff whose provider "
        "sends fiscal receipts by email (YooKassa) for an account without an email"
    ),
    examples=[
        _error_example(TariffUnavailable, {"tariff": "no-such-tariff"}),
        *(_error_example(error, {"promo_code": "WELCOME15"}) for error in PROMO_CODE_ERRORS),
        _error_example(ReceiptEmailRequired, {"provider": "yookassa"}),
    ],
)


def viewer_subscription(request: Request, subscription_id: UUID) -> Subscription:
    """Return one of the caller's subscriptions; raise NotFound for another's or an unknown one."""
    subscription = subscription_get(account=viewer_of(request).account, subscription_id=subscription_id)
    if subscription is None:
        raise NotFound("No such subscription.")
    return subscription


def _tariff_by_reference(reference: str) -> Tariff:
    tariff = tariff_get_by_reference(reference=reference)
    if tariff is None:
        raise TariffUnavailable(details={"tariff": reference})
    return tariff


class SubscriptionListApi(ListAPIView):
    serializer_class = SubscriptionOutputSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return subscription_list(account=viewer_of(self.request).account)

    @extend_schema(
        tags=["subscriptions"],
        summary="List the caller's subscriptions, newest first",
        responses={200: SubscriptionOutputSerializer(many=True), **VIEWER_ERRORS},
        examples=[
            OpenApiExample(
                "One subscription",
                value={"count": 1, "next": None, "previous": None, "results": [SUBSCRIPTION_EXAMPLE]},
                response_only=True,
            ),
            OpenApiExample(
                "Waiting for its first payment",
                value={"count": 1, "next": None, "previous": None, "results": [PENDING_SUBSCRIPTION_EXAMPLE]},
                response_only=True,
            ),
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["subscriptions"],
        summary="Subscribe to a tariff: get a Stripe Checkout link",
        description=(
            "Creates a pending subscription at the tariff's current price and a checkout page to "
            "pay it. The same viewer and tariff with an unpaid checkout get that checkout back. "
            "Send `Idempotency-Key` to make retries safe: the same key returns the same answer. "
            "The client never sends an amount.\n\n"
            "`promo_code` (any case) discounts the price for the periods the code allows; the "
            "first payment shows the discounted amount, and a first period it makes free saves "
            "the card without a charge (checkout mode `setup`). A code that cannot be used is a "
            "400: `promo_code_invalid` (unknown or deactivated), `promo_code_not_yet_valid`, "
            "`promo_code_expired`, `promo_code_not_applicable` (another tariff or currency), "
            "`promo_code_already_used` (the viewer's own limit) or `promo_code_exhausted` (no "
            "uses left); nothing is written then."
        ),
        request=SubscribeInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="Up to 255 characters.",
            )
        ],
        responses={
            201: SubscribeOutputSerializer,
            200: SubscribeOutputSerializer,
            400: SUBSCRIBE_BAD_REQUEST,
            409: error_response(
                "subscription_already_exists", LiveSubscriptionExists.message, "Already subscribed"
            ),
            422: error_response("idempotency_key_reused", IdempotencyKeyReused.message, "Key reused"),
            503: error_response(
                "payment_provider_unavailable", PaymentProviderUnavailable.message, "Retry later"
            ),
            **VIEWER_ERRORS,
        },
        examples=[
            OpenApiExample("Monthly", value={"tariff": "monthly", "autopay": True}, request_only=True),
            OpenApiExample(
                "With a promo code", value={"tariff": "monthly", "promo_code": "WELCOME15"}, request_only=True
            ),
            OpenApiExample(
                "Checkout opened", value=SUBSCRIBE_EXAMPLE, response_only=True, status_codes=["201", "200"]
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        account = viewer_of(request).account
        data = validated(SubscribeInputSerializer, request.data)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self._subscribe(account, data)
        key, fingerprint = validate_key(key), request_fingerprint("subscribe", data)
        stored = idempotent_request_reserve(account=account, key=key, fingerprint=fingerprint)
        if stored is not None:
            return Response(stored.body, status=stored.status)
        try:
            response = self._subscribe(account, data)
        except Exception:
            idempotent_request_release(account=account, key=key, fingerprint=fingerprint)
            raise
        stored = idempotent_answer_store(
            account=account, key=key, fingerprint=fingerprint, status=response.status_code, body=response.data
        )
        return Response(stored.body, status=stored.status)

    def _subscribe(self, account: BillingAccount, data: dict[str, Any]) -> Response:
        tariff = _tariff_by_reference(data["tariff"])
        result = subscribe(
            account=account, tariff=tariff, autopay=data["autopay"], promo_code=data.get("promo_code")
        )
        body = SubscribeOutputSerializer(result).data
        return Response(body, status=201 if result.created else 200)


@extend_schema(
    tags=["subscriptions"],
    summary="Get one of the caller's subscriptions",
    responses={200: SubscriptionOutputSerializer, 404: NOT_FOUND, **VIEWER_ERRORS},
    examples=[
        OpenApiExample("Active", value=SUBSCRIPTION_EXAMPLE, response_only=True),
        OpenApiExample(
            "Pending: pay on payment_action_url", value=PENDING_SUBSCRIPTION_EXAMPLE, response_only=True
        ),
        OpenApiExample(
            "Past due: the bank waits for the viewer", value=PAST_DUE_SUBSCRIPTION_EXAMPLE, response_only=True
        ),
    ],
)
class SubscriptionDetailApi(APIView):
    def get(self, request: Request, subscription_id: UUID) -> Response:
        return Response(SubscriptionOutputSerializer(viewer_subscription(request, subscription_id)).data)


@extend_schema(
    tags=["subscriptions"],
    summary="List the payments of one of the caller's subscriptions",
    responses={200: PaymentOutputSerializer(many=True), 404: NOT_FOUND, **VIEWER_ERRORS},
    examples=[
        OpenApiExample(
            "One payment",
            value={"count": 1, "next": None, "previous": None, "results": [PAYMENT_EXAMPLE]},
            response_only=True,
        )
    ],
)
class SubscriptionPaymentListApi(ListAPIView):
    serializer_class = PaymentOutputSerializer

    def get_queryset(self) -> QuerySet[Any]:
        subscription = viewer_subscription(self.request, self.kwargs["subscription_id"])
        return payment_list_for_subscription(subscription=subscription)
