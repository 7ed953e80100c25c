from django.urls import path

from billing.api import (
    AccessApi,
    InternalAccessApi,
    SubscriptionDetailApi,
    SubscriptionListApi,
    SubscriptionPaymentListApi,
)

urlpatterns = [
    path("subscriptions/", SubscriptionListApi.as_view(), name="subscription-list"),
    path(
        "subscriptions/<uuid:subscription_id>/", SubscriptionDetailApi.as_view(), name="subscription-detail"
    ),
    path(
        "subscriptions/<uuid:subscription_id>/payments/",
        SubscriptionPaymentListApi.as_view(),
        name="subscription-payment-list",
    ),
    path("access/", AccessApi.as_view(), name="access"),
    path("internal/access/<str:user_id>/", InternalAccessApi.as_view(), name="internal-access"),
]
