from rest_framework import serializers

from billing.models import Subscription
from core.validation import StrictInputSerializer
from payments.serializers import PaymentOutputSerializer


class TariffRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    tariff = TariffRefSerializer()
    amount = serializers.IntegerField(help_text="Price per period in minor units, locked at signup.")
    payment_action_url = serializers.SerializerMethodField(
        help_text="When the bank asks the viewer to confirm a renewal: the page to pay it on."
    )

    def get_payment_action_url(self, subscription: Subscription) -> str | None:
        # Prefetched by the selectors: the open checkouts of renewal payments.
        pending_actions = getattr(subscription, "open_renewal_checkouts", [])
        return next((checkout.url for checkout in pending_actions if checkout.url), None)

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
            "trial_end",
            "next_renewal_attempt_at",
            "payment_action_url",
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


class AutopayInputSerializer(StrictInputSerializer):
    enabled = serializers.BooleanField()


class SubscribeInputSerializer(StrictInputSerializer):
    # The client never sends an amount: unknown fields are refused.
    tariff = serializers.CharField(help_text="The tariff's id or slug.", max_length=64)
    promo_code = serializers.CharField(required=False, allow_blank=False, max_length=64)
    autopay = serializers.BooleanField(required=False, default=True)


class CheckoutOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    mode = serializers.CharField(help_text="`payment`, or `setup` for a trial that saves the card only.")
    status = serializers.CharField()
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class SubscribeOutputSerializer(serializers.Serializer):
    subscription = SubscriptionOutputSerializer()
    payment = PaymentOutputSerializer(allow_null=True)
    checkout = CheckoutOutputSerializer()
    checkout_url = serializers.URLField(source="checkout.url")
