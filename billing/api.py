"""Viewer and internal endpoints for subscriptions and access."""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import BillingAccount
from accounts.permissions import IsInternalService
from accounts.principals import validated_user_id, viewer_of
from accounts.services import account_get_or_create
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
from billing.selectors import Access, access_for_user
from billing.serializers import (
    AccessOutputSerializer,
    AutopayInputSerializer,
    SubscribeInputSerializer,
    SubscribeOutputSerializer,
    SubscriptionOutputSerializer,
)
from billing.services import CannotResume, subscription_resume, subscription_set_autopay
from core import clock
from core.errors import DomainError, LiveSubscriptionExists, NotFound, TariffUnavailable, error_body
from core.openapi import NOT_FOUND, VIEWER_ERRORS, ErrorSerializer, error_response
from core.validation import validated
from payments.api import PAYMENT_EXAMPLE
from payments.selectors import payment_list_for_subscription, subscription_get, subscription_list
from payments.serializers import PaymentOutputSerializer
from payments.services.subscribe import PaymentProviderUnavailable, subscribe, subscription_cancel_by_viewer
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
    "canceled_at": None,
    "ended_at": None,
    "created_at": "2026-11-01T09:58:12Z",
}
ACCESS_EXAMPLE = {
    "has_access": True,
    "subscription": {
        "id": "3f1c2a9e-5d1b-4c47-9a0e-2b8f6d7c1e55",
        "status": "active",
        "tariff": {"id": 1, "slug": "monthly", "name": "Monthly"},
        "current_period_end": "2026-12-01T10:00:00Z",
        "autopay": True,
        "cancel_at_period_end": False,
    },
}


def _tariff_by_reference(reference: str) -> Tariff:
    tariff = tariff_get_by_reference(reference=reference)
    if tariff is None:
        raise TariffUnavailable(details={"tariff": reference})
    return tariff


SUBSCRIBE_EXAMPLE = {
    "subscription": {
        **SUBSCRIPTION_EXAMPLE,
        "status": "pending",
        "current_period_start": None,
        "current_period_end": None,
    },
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
    description="Unknown or inactive tariff, or a promo code that cannot be used",
    examples=[
        _error_example(TariffUnavailable, {"tariff": "no-such-tariff"}),
        *(_error_example(error, {"promo_code": "WELCOME15"}) for error in PROMO_CODE_ERRORS),
    ],
)


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
            )
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
    examples=[OpenApiExample("Active", value=SUBSCRIPTION_EXAMPLE, response_only=True)],
)
class SubscriptionDetailApi(APIView):
    def get(self, request: Request, subscription_id: UUID) -> Response:
        subscription = subscription_get(account=viewer_of(request).account, subscription_id=subscription_id)
        if subscription is None:
            raise NotFound("No such subscription.")
        return Response(SubscriptionOutputSerializer(subscription).data)


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
        subscription = subscription_get(
            account=viewer_of(self.request).account, subscription_id=self.kwargs["subscription_id"]
        )
        if subscription is None:
            raise NotFound("No such subscription.")
        return payment_list_for_subscription(subscription=subscription)


class SubscriptionActionApi(APIView):
    """Base of the endpoints that change one of the caller's subscriptions."""

    def subscription(self, request: Request, subscription_id: UUID) -> Subscription:
        subscription = subscription_get(account=viewer_of(request).account, subscription_id=subscription_id)
        if subscription is None:
            raise NotFound("No such subscription.")
        return subscription

    def answer(self, subscription: Subscription) -> Response:
        fresh = subscription_get(account=subscription.account, subscription_id=subscription.pk)
        return Response(SubscriptionOutputSerializer(fresh).data)


ACTION_RESPONSES: dict[int, Any] = {
    200: SubscriptionOutputSerializer,
    404: NOT_FOUND,
    409: error_response("subscription_ended", "This subscription has already ended.", "Not possible now"),
    **VIEWER_ERRORS,
}


@extend_schema(
    tags=["subscriptions"],
    summary="Turn automatic renewal on or off",
    description="Without autopay the subscription ends at its period end; with it the saved card is charged.",
    request=AutopayInputSerializer,
    responses=ACTION_RESPONSES,
    examples=[
        OpenApiExample("Off", value={"enabled": False}, request_only=True),
        OpenApiExample("Subscription", value={**SUBSCRIPTION_EXAMPLE, "autopay": False}, response_only=True),
    ],
)
class SubscriptionAutopayApi(SubscriptionActionApi):
    def post(self, request: Request, subscription_id: UUID) -> Response:
        data = validated(AutopayInputSerializer, request.data)
        subscription = self.subscription(request, subscription_id)
        return self.answer(subscription_set_autopay(subscription=subscription, enabled=data["enabled"]))


@extend_schema(
    tags=["subscriptions"],
    summary="Cancel: access stays to the period end, nothing renews",
    description=(
        "A running subscription is set to end at its period end (resume undoes it before then); "
        "an unpaid one is canceled at once and its checkout closed; a past-due one ends at once."
    ),
    request=None,
    responses=ACTION_RESPONSES,
    examples=[
        OpenApiExample(
            "Canceled",
            value={
                **SUBSCRIPTION_EXAMPLE,
                "cancel_at_period_end": True,
                "canceled_at": "2026-11-20T08:00:00Z",
            },
            response_only=True,
        )
    ],
)
class SubscriptionCancelApi(SubscriptionActionApi):
    def post(self, request: Request, subscription_id: UUID) -> Response:
        subscription = self.subscription(request, subscription_id)
        return self.answer(subscription_cancel_by_viewer(subscription=subscription))


@extend_schema(
    tags=["subscriptions"],
    summary="Resume a canceled subscription before its period ends",
    request=None,
    responses={
        **ACTION_RESPONSES,
        409: error_response("cannot_resume", CannotResume.message, "Not resumable"),
    },
    examples=[OpenApiExample("Resumed", value=SUBSCRIPTION_EXAMPLE, response_only=True)],
)
class SubscriptionResumeApi(SubscriptionActionApi):
    def post(self, request: Request, subscription_id: UUID) -> Response:
        subscription = self.subscription(request, subscription_id)
        return self.answer(subscription_resume(subscription=subscription, at=clock.now()))


def _access_response(access: Access) -> Response:
    # Built directly, not through AccessOutputSerializer (which stays the documented schema,
    # and which billing/tests hold this equal to): the frontend polls this endpoint.
    subscription = access.subscription
    return Response(
        {
            "has_access": access.has_access,
            "subscription": None
            if subscription is None
            else {
                "id": str(subscription.id),
                "status": subscription.status,
                "tariff": {
                    "id": subscription.tariff.id,
                    "slug": subscription.tariff.slug,
                    "name": subscription.tariff.name,
                },
                # Rendered as DRF's DateTimeField would: ISO 8601, UTC as "Z".
                "current_period_end": subscription.current_period_end,
                "autopay": subscription.autopay,
                "cancel_at_period_end": subscription.cancel_at_period_end,
            },
        }
    )


@extend_schema(
    tags=["access"],
    summary="Whether the caller may watch now (the frontend polls this)",
    description=(
        "`has_access` is true for a trialing or active subscription, and for a past-due one "
        "within the grace period. At most one indexed database query per request; repeated "
        "polls are answered from a per-process cache that PostgreSQL keeps right by notifying "
        "every committed change."
    ),
    responses={200: AccessOutputSerializer, **VIEWER_ERRORS},
    examples=[
        OpenApiExample("Watching", value=ACCESS_EXAMPLE, response_only=True),
        OpenApiExample(
            "No subscription", value={"has_access": False, "subscription": None}, response_only=True
        ),
    ],
)
class AccessApi(APIView):
    def get(self, request: Request) -> Response:
        viewer = viewer_of(request)
        result = access_for_user(user_id=viewer.user_id)
        if not result.account_exists:
            # The viewer's first request: open their billing account. Later requests
            # find it in the same single query that reads their access.
            account_get_or_create(user_id=viewer.user_id, email=viewer.email, language=viewer.language)
        return _access_response(result.access)


@extend_schema(
    tags=["internal"],
    summary="Whether a cinema user may watch now (for internal services)",
    description="Authenticated with `X-Service-Key`. Unknown users have no access.",
    responses={
        200: AccessOutputSerializer,
        401: error_response("service_key_invalid", "The service key is not valid.", "No valid key"),
    },
    examples=[OpenApiExample("Watching", value=ACCESS_EXAMPLE, response_only=True)],
)
class InternalAccessApi(APIView):
    permission_classes = [IsInternalService]

    def get(self, request: Request, user_id: str) -> Response:
        return _access_response(access_for_user(user_id=validated_user_id(user_id)).access)
