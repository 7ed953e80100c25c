from rest_framework import serializers

from core.validation import StrictInputSerializer
from payments.models import CheckoutSession, Payment, RefundRequest


class PaymentOutputSerializer(serializers.ModelSerializer):
    subscription = serializers.UUIDField(source="subscription_id", read_only=True)
    amount = serializers.IntegerField(help_text="In minor units.")
    refunded_amount = serializers.IntegerField(help_text="In minor units.")

    class Meta:
        model = Payment
        fields = [
            "id",
            "subscription",
            "kind",
            "status",
            "amount",
            "currency",
            "refunded_amount",
            "period_start",
            "period_end",
            "failure_code",
            "failure_message",
            "paid_at",
            "created_at",
        ]


class CheckoutStatusOutputSerializer(serializers.ModelSerializer):
    status = serializers.CharField(help_text="`open`, `complete` or `expired`.")
    payment_status = serializers.CharField(source="payment.status", allow_null=True, default=None)
    subscription_status = serializers.CharField(source="subscription.status")
    failure_code = serializers.CharField(source="payment.failure_code", default="")
    failure_message = serializers.CharField(source="payment.failure_message", default="")

    class Meta:
        model = CheckoutSession
        fields = ["id", "status", "payment_status", "subscription_status", "failure_code", "failure_message"]


class RefundRequestInputSerializer(StrictInputSerializer):
    # Only the reason: the amount is never the viewer's to choose.
    reason = serializers.CharField(max_length=2000, help_text="Why the viewer wants the payment back.")


class RefundRequestOutputSerializer(serializers.ModelSerializer):
    payment = serializers.UUIDField(source="payment_id", read_only=True)
    status = serializers.CharField(help_text="`open`, `approved` or `rejected`.")

    class Meta:
        model = RefundRequest
        fields = ["id", "payment", "reason", "status", "created_at"]
