import factory

from tariffs.models import PeriodUnit, PromoCode, PromoDuration, PromoKind, Tariff


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


class PromoCodeFactory(factory.django.DjangoModelFactory):
    """A 15%-off code for the first period, for anyone, once per viewer; pass traits to vary it."""

    class Meta:
        model = PromoCode
        skip_postgeneration_save = True

    class Params:
        fixed = factory.Trait(kind=PromoKind.FIXED, percent_off=None, amount_off=10000, currency="RUB")

    code = factory.Sequence(lambda n: f"PROMO{n}")
    kind = PromoKind.PERCENT
    percent_off = 15
    amount_off = None
    currency = ""
    duration = PromoDuration.ONCE
    duration_periods = None
    max_redemptions = None
    max_per_account = 1
    is_active = True

    @factory.post_generation
    def tariffs(self, create: bool, extracted: list[Tariff] | None, **kwargs: object) -> None:
        if create and extracted:
            self.tariffs.set(extracted)
