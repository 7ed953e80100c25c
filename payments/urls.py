from django.urls import path

from payments.api import PaymentDetailApi, PaymentListApi

urlpatterns = [
    path("payments/", PaymentListApi.as_view(), name="payment-list"),
    path("payments/<uuid:payment_id>/", PaymentDetailApi.as_view(), name="payment-detail"),
]
