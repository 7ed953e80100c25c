from django.urls import path

from payments.api import (
    CheckoutStatusApi,
    PaymentDetailApi,
    PaymentListApi,
    PaymentRefundRequestApi,
    ProviderWebhookApi,
    StripeWebhookApi,
)
from payments.api_payment_method import PaymentMethodApi, PaymentMethodUpdateApi
from payments.api_refunds import RefundListApi, RefundRequestListApi

urlpatterns = [
    path("payments/", PaymentListApi.as_view(), name="payment-list"),
    path("payments/<uuid:payment_id>/", PaymentDetailApi.as_view(), name="payment-detail"),
    path(
        "payments/<uuid:payment_id>/refund-request/",
        PaymentRefundRequestApi.as_view(),
        name="payment-refund-request",
    ),
    path("refunds/", RefundListApi.as_view(), name="refund-list"),
    path("refund-requests/", RefundRequestListApi.as_view(), name="refund-request-list"),
    path("checkouts/<uuid:checkout_id>/", CheckoutStatusApi.as_view(), name="checkout-status"),
    path("payment-method/", PaymentMethodApi.as_view(), name="payment-method"),
    path("payment-method/update/", PaymentMethodUpdateApi.as_view(), name="payment-method-update"),
    # Stripe's keeps its own route (and schema); every provider is reachable by its name.
    path("webhooks/stripe/", StripeWebhookApi.as_view(), name="stripe-webhook"),
    path("webhooks/<slug:provider>/", ProviderWebhookApi.as_view(), name="provider-webhook"),
]
