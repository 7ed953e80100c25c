"""Viewer endpoints that change one of the caller's subscriptions: autopay, cancel, resume."""

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.subscriptions import SUBSCRIPTION_EXAMPLE, viewer_subscription
from billing.models import Subscription
from billing.serializers import AutopayInputSerializer, SubscriptionOutputSerializer
from billing.services import CannotResume, subscription_resume, subscription_set_autopay
from core import clock
from core.openapi import NOT_FOUND, VIEWER_ERRORS, error_response
from core.validation import validated
from payments.selectors import subscription_get
from payments.services.subscribe import subscription_cancel_by_viewer


class SubscriptionActionApi(APIView):
    """Base of the endpoints that change one of the caller's subscriptions."""

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
        OpenApiExample(
            "Subscription",
            value={**SUBSCRIPTION_EXAMPLE, "autopay": False, "next_charge": None},
            response_only=True,
        ),
    ],
)
class SubscriptionAutopayApi(SubscriptionActionApi):
    def post(self, request: Request, subscription_id: UUID) -> Response:
        data = validated(AutopayInputSerializer, request.data)
        subscription = viewer_subscription(request, subscription_id)
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
                "next_charge": None,
            },
            response_only=True,
        )
    ],
)
class SubscriptionCancelApi(SubscriptionActionApi):
    def post(self, request: Request, subscription_id: UUID) -> Response:
        subscription = viewer_subscription(request, subscription_id)
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
        subscription = viewer_subscription(request, subscription_id)
        return self.answer(subscription_resume(subscription=subscription, at=clock.now()))
