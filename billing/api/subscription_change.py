"""Viewer endpoint for plan changes: preview, change (upgrade now, downgrade at the period end), withdraw."""

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.subscriptions import SUBSCRIPTION_EXAMPLE, _tariff_by_reference, viewer_subscription
from billing.plan_change import (
    PLAN_CHANGE_BAD_REQUESTS,
    PLAN_CHANGE_CONFLICTS,
    NoScheduledChange,
    subscription_scheduled_change_withdraw,
)
from billing.serializers import (
    PlanChangeInputSerializer,
    PlanChangeOutputSerializer,
    PlanChangePreviewSerializer,
    SubscriptionOutputSerializer,
)
from core.errors import NotFound, error_body
from core.openapi import VIEWER_ERRORS, ErrorSerializer, domain_errors_response
from core.validation import validated
from payments.api import PAYMENT_EXAMPLE
from payments.selectors import subscription_get
from payments.services.plan_change import (
    ChangeCardDeclined,
    ChangeResult,
    NoPaymentMethodForChange,
    plan_change_preview,
    plan_change_request,
)
from payments.services.plan_change_settle import SubscriptionChangedSince
from payments.services.subscribe import PaymentProviderUnavailable

PREVIEW_UPGRADE_EXAMPLE = {
    "kind": "upgrade",
    "amount_due": 276207,
    "currency": "RUB",
    "effective_at": "2026-11-11T10:00:00Z",
    "new_period_end": "2027-11-11T10:00:00Z",
}
PREVIEW_DOWNGRADE_EXAMPLE = {
    "kind": "downgrade",
    "amount_due": 0,
    "currency": "RUB",
    "effective_at": "2027-11-01T10:00:00Z",
    "new_period_end": "2027-12-01T10:00:00Z",
}
UPGRADED_SUBSCRIPTION = {
    **SUBSCRIPTION_EXAMPLE,
    "tariff": {"id": 2, "slug": "yearly", "name": "Yearly"},
    "amount": 399000,
    "current_period_start": "2026-11-11T10:00:00Z",
    "current_period_end": "2027-11-11T10:00:00Z",
    "next_charge": {"amount": 399000, "currency": "RUB", "at": "2027-11-11T10:00:00Z"},
}
CHANGE_PAYMENT_EXAMPLE: dict[str, Any] = {
    **PAYMENT_EXAMPLE,
    "kind": "change",
    "amount": 276207,
    "period_start": "2026-11-11T10:00:00Z",
    "period_end": "2027-11-11T10:00:00Z",
}
APPLIED_EXAMPLE = {
    **PREVIEW_UPGRADE_EXAMPLE,
    "status": "applied",
    "payment": CHANGE_PAYMENT_EXAMPLE,
    "payment_action_url": None,
    "subscription": UPGRADED_SUBSCRIPTION,
}
ACTION_REQUIRED_EXAMPLE = {
    **APPLIED_EXAMPLE,
    "status": "action_required",
    "payment": {**CHANGE_PAYMENT_EXAMPLE, "status": "failed", "paid_at": None},
    "payment_action_url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
    "subscription": SUBSCRIPTION_EXAMPLE,
}
SCHEDULED_EXAMPLE = {
    **PREVIEW_DOWNGRADE_EXAMPLE,
    "status": "scheduled",
    "payment": None,
    "payment_action_url": None,
    "subscription": {
        **SUBSCRIPTION_EXAMPLE,
        "tariff": {"id": 2, "slug": "yearly", "name": "Yearly"},
        "scheduled_change": {
            "tariff": {"id": 1, "slug": "monthly", "name": "Monthly"},
            "effective_at": "2027-11-01T10:00:00Z",
        },
        # The renewal that takes the downgrade charges the new tariff's price.
        "next_charge": {"amount": 39900, "currency": "RUB", "at": "2027-11-01T10:00:00Z"},
    },
}


_TARIFF_REFUSED = domain_errors_response(
    400, "The tariff cannot be chosen, or the request has invalid fields", *PLAN_CHANGE_BAD_REQUESTS
)
BAD_REQUEST = OpenApiResponse(
    response=ErrorSerializer,
    description=_TARIFF_REFUSED.description,
    examples=[
        *_TARIFF_REFUSED.examples,
        OpenApiExample(
            "validation_error",
            value=error_body(
                "validation_error",
                "The request has invalid fields.",
                {"amount": ["This field is not accepted."]},
            ),
            response_only=True,
            status_codes=["400"],
        ),
    ],
)


def _answer(result: ChangeResult) -> Response:
    # Re-read as the other endpoints answer it (the scheduled change, the action link).
    fresh = subscription_get(account=result.subscription.account, subscription_id=result.subscription.pk)
    body = PlanChangeOutputSerializer(
        {
            "kind": result.kind,
            "amount_due": result.amount_due,
            "currency": result.currency,
            "effective_at": result.effective_at,
            "new_period_end": result.new_period_end,
            "status": result.status,
            "payment": result.payment,
            "payment_action_url": result.payment_action_url,
            "subscription": fresh,
        }
    ).data
    return Response(body, status=202 if result.status in ("action_required", "processing") else 200)


class SubscriptionChangeApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        summary="Change plan: preview, upgrade now (prorated), or schedule a downgrade",
        description=(
            "`preview: true` answers what the change would do and changes nothing "
            "(`kind`, `amount_due` in minor units, `currency`, `effective_at`, `new_period_end`).\n\n"
            "An **upgrade** (a higher price per day) takes effect now. With the same period length "
            "the period end stays and `amount_due = round((new - old) * remaining / length)`; with "
            "another length a new period starts now and `amount_due = new - round(old * remaining / "
            "length)`. `remaining` and `length` are seconds on the billing clock, rounding is half "
            "up, the amount is never negative; `old` is what the viewer pays now (promo discount "
            "included). It is charged off-session to the saved card with a key derived from the "
            "change, so a retried or double-clicked request charges once (and answers the same). "
            "If the bank asks for authentication the answer is 202 `action_required` with "
            "`payment_action_url`, and nothing changes until that page is paid. A decline changes "
            "nothing and answers 402 `card_declined` with the bank's message.\n\n"
            "A **downgrade** is scheduled for the period end (`scheduled_change` on the "
            "subscription) and charged by the renewal at the new tariff's price; "
            "`DELETE` withdraws it. During a trial an upgrade costs nothing and the trial keeps its "
            "end (no second trial)."
        ),
        request=PlanChangeInputSerializer,
        responses={
            200: PlanChangeOutputSerializer,
            202: PlanChangeOutputSerializer,
            400: BAD_REQUEST,
            402: domain_errors_response(402, "The card was declined: nothing changed", ChangeCardDeclined),
            404: domain_errors_response(404, "Unknown, or not the caller's", NotFound),
            409: domain_errors_response(
                409,
                "The subscription cannot change plan now",
                *PLAN_CHANGE_CONFLICTS,
                NoPaymentMethodForChange,
                SubscriptionChangedSince,
            ),
            503: domain_errors_response(
                503, "The payment provider is not answering: retry (same charge)", PaymentProviderUnavailable
            ),
            **VIEWER_ERRORS,
        },
        examples=[
            OpenApiExample("Preview", value={"tariff": "yearly", "preview": True}, request_only=True),
            OpenApiExample("Change", value={"tariff": "yearly"}, request_only=True),
            OpenApiExample("Preview of an upgrade", value=PREVIEW_UPGRADE_EXAMPLE, response_only=True),
            OpenApiExample("Preview of a downgrade", value=PREVIEW_DOWNGRADE_EXAMPLE, response_only=True),
            OpenApiExample(
                "Upgrade applied", value=APPLIED_EXAMPLE, response_only=True, status_codes=["200"]
            ),
            OpenApiExample(
                "Downgrade scheduled", value=SCHEDULED_EXAMPLE, response_only=True, status_codes=["200"]
            ),
            OpenApiExample(
                "Bank asks to confirm",
                value=ACTION_REQUIRED_EXAMPLE,
                response_only=True,
                status_codes=["202"],
            ),
        ],
    )
    def post(self, request: Request, subscription_id: UUID) -> Response:
        data = validated(PlanChangeInputSerializer, request.data)
        subscription = viewer_subscription(request, subscription_id)
        tariff = _tariff_by_reference(data["tariff"])
        if data["preview"]:
            quote = plan_change_preview(subscription=subscription, tariff=tariff)
            body: dict[str, Any] = PlanChangePreviewSerializer(
                {
                    "kind": quote.kind,
                    "amount_due": quote.amount_due,
                    "currency": quote.currency,
                    "effective_at": quote.effective_at,
                    "new_period_end": quote.period_end,
                }
            ).data
            return Response(body)
        return _answer(plan_change_request(subscription=subscription, tariff=tariff))

    @extend_schema(
        tags=["subscriptions"],
        summary="Withdraw a scheduled downgrade",
        request=None,
        responses={
            200: SubscriptionOutputSerializer,
            404: domain_errors_response(
                404, "Unknown subscription, or nothing scheduled", NotFound, NoScheduledChange
            ),
            **VIEWER_ERRORS,
        },
        examples=[
            OpenApiExample(
                "Withdrawn", value={**SUBSCRIPTION_EXAMPLE, "scheduled_change": None}, response_only=True
            )
        ],
    )
    def delete(self, request: Request, subscription_id: UUID) -> Response:
        subscription = viewer_subscription(request, subscription_id)
        withdrawn = subscription_scheduled_change_withdraw(subscription=subscription)
        fresh = subscription_get(account=withdrawn.account, subscription_id=withdrawn.pk)
        return Response(SubscriptionOutputSerializer(fresh).data)
