from django.urls import path

from payments.api import (
    CheckoutStatusApi,
    PaymentDetailApi,
    PaymentListApi,
    PaymentRefundRequestApi,
    ProviderWebhookApi,
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
    # Stripe's keeps its own route (and schema); every provider is reachable by its name.
    path("webhooks/stripe/", StripeWebhookApi.as_view(), name="stripe-webhook"),
    path("webhooks/<slug:provider>/", ProviderWebhookApi.as_view(), name="provider-webhook"),
]
