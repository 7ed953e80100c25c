"""Whether a viewer may watch now: the endpoint the frontend polls, and internal services' one."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsInternalService
from accounts.principals import validated_user_id, viewer_of
from accounts.services import account_get_or_create
from billing.selectors import Access, access_for_user
from billing.serializers import AccessOutputSerializer
from core.openapi import VIEWER_ERRORS, error_response

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
