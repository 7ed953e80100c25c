from django.urls import path

from billing.api.access import AccessApi, InternalAccessApi
from billing.api.subscription_actions import (
    SubscriptionAutopayApi,
    SubscriptionCancelApi,
    SubscriptionResumeApi,
)
from billing.api.subscription_change import SubscriptionChangeApi
from billing.api.subscriptions import SubscriptionDetailApi, SubscriptionListApi, SubscriptionPaymentListApi

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
    path(
        "subscriptions/<uuid:subscription_id>/autopay/",
        SubscriptionAutopayApi.as_view(),
        name="subscription-autopay",
    ),
    path(
        "subscriptions/<uuid:subscription_id>/cancel/",
        SubscriptionCancelApi.as_view(),
        name="subscription-cancel",
    ),
    path(
        "subscriptions/<uuid:subscription_id>/resume/",
        SubscriptionResumeApi.as_view(),
        name="subscription-resume",
    ),
    path(
        "subscriptions/<uuid:subscription_id>/change/",
        SubscriptionChangeApi.as_view(),
        name="subscription-change",
    ),
    path("access/", AccessApi.as_view(), name="access"),
    path("internal/access/<str:user_id>/", InternalAccessApi.as_view(), name="internal-access"),
]
