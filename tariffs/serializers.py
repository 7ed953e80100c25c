from rest_framework import serializers

from tariffs.models import Tariff


class PeriodSerializer(serializers.Serializer):
    unit = serializers.CharField(source="period_unit", help_text="`month` or `year`.")
    count = serializers.IntegerField(source="period_count", help_text="Units per billing period.")


class TariffOutputSerializer(serializers.ModelSerializer):
    name = serializers.CharField(
        source="name_for", help_text="In the request's language (`Accept-Language`: en or ru), else English."
    )
    description = serializers.CharField(
        source="description_for",
        help_text="In the request's language (`Accept-Language`: en or ru), else English.",
    )
    amount = serializers.IntegerField(help_text="Price per period in minor units (39900 is 399.00).")
    currency = serializers.CharField(help_text="ISO 4217 code.")
    period = PeriodSerializer(source="*")
    provider = serializers.CharField(
        source="payment_provider", help_text="Who takes the payments: `stripe` or `yookassa`."
    )

    class Meta:
        model = Tariff
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "amount",
            "currency",
            "period",
            "trial_days",
            "provider",
        ]
