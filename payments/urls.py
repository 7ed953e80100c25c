from django.urls import path

from payments.api import (
    CheckoutStatusApi,
    PaymentDetailApi,
    PaymentListApi,
    PaymentRefundRequestApi,
    StripeWebhookApi,
)

urlpatterns = [
    path("payments/", PaymentListApi.as_view(), name="payment-list"),
    path("payments/<uuid:payment_id>/", PaymentDetailApi.as_view(), name="payment-detail"),
    path(
        "payments/<uuid:payment_id>/refund-request/",
        PaymentRefundRequestApi.as_view(),
        name="payment-refund-request",
    ),
    path("checkouts/<uuid:checkout_id>/", CheckoutStatusApi.as_view(), name="checkout-status"),
    path("webhooks/stripe/", StripeWebhookApi.as_view(), name="stripe-webhook"),
]
