from rest_framework import serializers

from billing.models import Subscription


class TariffRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    tariff = TariffRefSerializer()
    amount = serializers.IntegerField(help_text="Price per period in minor units, locked at signup.")

    class Meta:
        model = Subscription
        fields = [
            "id",
            "status",
            "tariff",
            "amount",
            "currency",
            "autopay",
            "cancel_at_period_end",
            "current_period_start",
            "current_period_end",
            "canceled_at",
            "ended_at",
            "created_at",
        ]


class AccessSubscriptionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    tariff = TariffRefSerializer()
    current_period_end = serializers.DateTimeField(allow_null=True)
    autopay = serializers.BooleanField()
    cancel_at_period_end = serializers.BooleanField()


class AccessOutputSerializer(serializers.Serializer):
    has_access = serializers.BooleanField()
    subscription = AccessSubscriptionSerializer(allow_null=True)
