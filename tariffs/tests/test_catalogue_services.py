"""The catalogue's rules hold in its services, whoever calls them (the admin forms are one caller)."""

import pytest
from django.core.exceptions import ValidationError

from tariffs.models import PromoCode, PromoKind, Tariff
from tariffs.services import promo_code_save, tariff_save, tariff_set_active
from tariffs.tests.factories import PromoCodeFactory, TariffFactory

pytestmark = pytest.mark.django_db


def refused_fields(error: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return set(error.value.error_dict)


def test_tariff_is_saved_with_its_currency_in_upper_case():
    tariff = tariff_save(tariff=Tariff(slug="kids", name="Kids", amount=19900, currency=" rub "))

    assert Tariff.objects.get(pk=tariff.pk).currency == "RUB"


@pytest.mark.parametrize(
    ("attributes", "fields"),
    [
        ({"amount": 0}, {"amount"}),
        ({"amount": 10**15}, {"amount"}),
        ({"currency": "RUBL"}, {"currency"}),
        ({"period_count": 0}, {"period_count"}),
    ],
)
def test_tariff_breaking_a_rule_is_not_saved(attributes, fields):
    tariff = Tariff(slug="kids", name="Kids", **({"amount": 19900, "currency": "RUB"} | attributes))

    with pytest.raises(ValidationError) as error:
        tariff_save(tariff=tariff)

    assert refused_fields(error) == fields
    assert not Tariff.objects.exists()


def test_fixed_code_is_saved_only_in_the_currency_of_its_tariffs():
    roubles = TariffFactory(currency="RUB")
    dollars = TariffFactory(amount=499, currency="USD")
    promo = PromoCode(code="minus5", kind=PromoKind.FIXED, amount_off=500, currency="usd", duration="once")

    with pytest.raises(ValidationError) as error:
        promo_code_save(promo=promo, tariffs=[roubles, dollars])
    assert refused_fields(error) == {"currency"}
    assert not PromoCode.objects.exists()

    saved = promo_code_save(promo=promo, tariffs=[dollars])
    assert (saved.code, saved.currency, list(saved.tariffs.all())) == ("MINUS5", "USD", [dollars])


def test_percent_code_drops_the_fields_a_fixed_amount_uses():
    promo = PromoCode(
        code="HALF",
        kind=PromoKind.PERCENT,
        percent_off=50,
        amount_off=100,
        currency="RUB",
        duration="forever",
    )

    saved = promo_code_save(promo=promo, tariffs=[])

    assert (saved.amount_off, saved.currency, saved.duration_periods) == (None, "", None)


def test_edit_keeps_the_uses_counted_since_the_form_was_read():
    promo = PromoCodeFactory(code="SPRING", times_redeemed=1)
    PromoCode.objects.filter(pk=promo.pk).update(times_redeemed=5)

    promo.percent_off = 20
    promo_code_save(promo=promo, tariffs=[])

    promo.refresh_from_db()
    assert (promo.percent_off, promo.times_redeemed) == (20, 5)


def test_activating_tariffs_changes_none_when_one_breaks_the_currency_rule():
    roubles = TariffFactory(currency="RUB", is_active=False)
    dollars = TariffFactory(amount=499, currency="USD", is_active=False)
    PromoCodeFactory(code="MINUS100", fixed=True)

    with pytest.raises(ValidationError):
        tariff_set_active(tariffs=Tariff.objects.all(), active=True)

    assert not Tariff.objects.filter(pk__in=[roubles.pk, dollars.pk], is_active=True).exists()
