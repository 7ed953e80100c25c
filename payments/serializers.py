from rest_framework import serializers

from payments.models import Payment


class PaymentOutputSerializer(serializers.ModelSerializer):
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
