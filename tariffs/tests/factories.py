import factory

from tariffs.models import PeriodUnit, Tariff


class TariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tariff

    slug = factory.Sequence(lambda n: f"tariff-{n}")
    name = factory.Sequence(lambda n: f"Tariff {n}")
    description = "Every film and series."
    amount = 39900
    currency = "RUB"
    period_unit = PeriodUnit.MONTH
    period_count = 1
    trial_days = 0
    is_active = True
