from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.http import urlencode
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import Subscription
from billing.next_charge import next_charge_for
from core.validation import StrictInputSerializer
from payments.selectors import first_payment_checkout, renewal_payment_awaiting_viewer, subscription_provider
from payments.serializers import PaymentOutputSerializer
from payments.services.action_links import action_link_url


class TariffRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class ScheduledChangeSerializer(serializers.Serializer):
    tariff = TariffRefSerializer()
    effective_at = serializers.DateTimeField(help_text="The period end, when the renewal takes the change.")


class NextChargeSerializer(serializers.Serializer):
    amount = serializers.IntegerField(
        help_text="In minor units: what the renewal will take, discount included."
    )
    currency = serializers.CharField()
    at = serializers.DateTimeField(
        allow_null=True,
        help_text="When it is charged; null for a past-due renewal that is due now and waits for the viewer.",
    )


def _checkout_review_url(checkout_id: Any) -> str:
    # Our review page: it states what the viewer agrees to, then leads to the provider's page.
    return f"{settings.PUBLIC_BASE_URL}{reverse('checkout-review')}?{urlencode({'checkout': checkout_id})}"


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    tariff = TariffRefSerializer()
    amount = serializers.IntegerField(help_text="Price per period in minor units, locked at signup.")
    payment_action_url = serializers.SerializerMethodField(
        help_text=(
            "Where the viewer pays what their subscription waits for: a pending one's first payment "
            "(our review page of its open checkout; null once that page has expired: subscribing "
            "again opens a fresh one), or a renewal the bank asks the viewer to confirm (a link "
            "that opens a fresh payment page whenever followed). Otherwise null."
        )
    )

    def get_payment_action_url(self, subscription: Subscription) -> str | None:
        # Both are prefetched by `subscription_list`; each is one query for a subscription read otherwise.
        checkout = first_payment_checkout(subscription=subscription)
        if checkout is not None:
            return _checkout_review_url(checkout.pk)
        # Our durable link (it opens a fresh provider page whenever followed), not the
        # provider's page, which dies after an hour.
        payment = renewal_payment_awaiting_viewer(subscription=subscription)
        return action_link_url(payment_id=payment.pk) if payment is not None else None

    next_charge = serializers.SerializerMethodField(
        help_text=(
            "What the next renewal will charge and when: the locked price less a promo discount "
            "still in effect then, or a scheduled downgrade's price. Null when nothing will be "
            "charged (pending, autopay off, canceled at the period end, ended)."
        )
    )

    @extend_schema_field(NextChargeSerializer(allow_null=True))
    def get_next_charge(self, subscription: Subscription) -> dict[str, Any] | None:
        charge = next_charge_for(subscription=subscription)
        return NextChargeSerializer(charge).data if charge is not None else None

    scheduled_change = serializers.SerializerMethodField(
        help_text="A downgrade scheduled for the period end (withdraw it with DELETE …/change/), or null."
    )
    provider = serializers.SerializerMethodField(
        help_text="Who takes its payments (`stripe` or `yookassa`): where its card was saved, else its tariff's."
    )

    def get_provider(self, subscription: Subscription) -> str:
        return subscription_provider(subscription=subscription)

    @extend_schema_field(ScheduledChangeSerializer(allow_null=True))
    def get_scheduled_change(self, subscription: Subscription) -> dict[str, Any] | None:
        tariff = subscription.scheduled_tariff
        if tariff is None:
            return None
        # A goodwill extension moves the period end, and the change with it.
        return ScheduledChangeSerializer(
            {"tariff": tariff, "effective_at": subscription.current_period_end}
        ).data

    class Meta:
        model = Subscription
        fields = [
            "id",
            "status",
            "tariff",
            "amount",
            "currency",
            "autopay",
            "provider",
            "cancel_at_period_end",
            "current_period_start",
            "current_period_end",
            "trial_end",
            "next_renewal_attempt_at",
            "payment_action_url",
            "next_charge",
            "scheduled_change",
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


class PlanChangeInputSerializer(StrictInputSerializer):
    tariff = serializers.CharField(help_text="The new tariff's id or slug.", max_length=64)
    preview = serializers.BooleanField(
        required=False, default=False, help_text="true: answer what the change would do, change nothing."
    )


class PlanChangePreviewSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["upgrade", "downgrade"])
    amount_due = serializers.IntegerField(
        help_text="What is charged now, in minor units (0 for a downgrade)."
    )
    currency = serializers.CharField()
    effective_at = serializers.DateTimeField(help_text="Now for an upgrade; the period end for a downgrade.")
    new_period_end = serializers.DateTimeField(help_text="The end of the period the new tariff runs in.")


class PlanChangeOutputSerializer(PlanChangePreviewSerializer):
    status = serializers.ChoiceField(
        choices=["applied", "scheduled", "action_required", "processing"],
        help_text=(
            "`applied` (upgrade paid and in effect), `scheduled` (downgrade at the period end), "
            "`action_required` (the bank asks the viewer to confirm: pay on `payment_action_url`; "
            "nothing changed yet) or `processing` (the provider has not finished the charge)."
        ),
    )
    payment = PaymentOutputSerializer(allow_null=True, help_text="The prorated charge of an upgrade.")
    payment_action_url = serializers.URLField(allow_null=True)
    subscription = SubscriptionOutputSerializer()
