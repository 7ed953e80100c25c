"""A price or discount is read back in words and confirmed before viewers can see it."""

import pytest
from django.urls import reverse

from billing.tests.factories import SubscriptionFactory
from tariffs.models import PeriodUnit, PromoCode, PromoKind, Tariff
from tariffs.tests.factories import PromoCodeFactory, TariffFactory

pytestmark = pytest.mark.django_db

TARIFF_ADD = reverse("admin:tariffs_tariff_add")
TARIFF_LIST = reverse("admin:tariffs_tariff_changelist")
PROMO_ADD = reverse("admin:tariffs_promocode_add")
CONFIRMED = {"_confirmed": "Yes, save"}


def tariff_change(tariff: Tariff) -> str:
    return reverse("admin:tariffs_tariff_change", args=[tariff.pk])


def tariff_form(**overrides: str) -> dict[str, str]:
    return {
        "name": "Family quarterly",
        "slug": "family-quarterly",
        "description": "Four screens.",
        "name_ru": "",
        "description_ru": "",
        "price": "999,00",
        "currency": "RUB",
        "period_count": "3",
        "period_unit": PeriodUnit.MONTH,
        "trial_days": "0",
        "is_active": "on",
        "display_order": "10",
        "_save": "Save",
    } | overrides


def form_of(tariff: Tariff, **overrides: str) -> dict[str, str]:
    """Return the change form of a tariff as stored, with `overrides` typed over it."""
    data = tariff_form(
        name=tariff.name,
        slug=tariff.slug,
        description=tariff.description,
        price=f"{tariff.amount // 100},{tariff.amount % 100:02d}",
        currency=tariff.currency,
        period_count=str(tariff.period_count),
        period_unit=tariff.period_unit,
    )
    if not tariff.is_active:
        del data["is_active"]
    return data | overrides


def promo_form(**overrides: object) -> dict[str, object]:
    return {
        "code": "WINTER100",
        "is_active": "on",
        "kind": PromoKind.FIXED,
        "percent_off": "",
        "amount": "100,00",
        "currency": "RUB",
        "duration": "once",
        "duration_periods": "",
        "max_redemptions": "",
        "max_per_account": "1",
        "_save": "Save",
    } | overrides


def summary(response) -> str:
    assert response.status_code == 200
    assert response.templates[0].name == "admin/tariffs/confirm_changes.html"
    return " ".join(response.context["changes"])


class TestNewTariff:
    def test_price_typed_the_russian_way_is_read_back_in_words_and_nothing_is_saved_yet(self, login_as):
        response = login_as("Manager").post(TARIFF_ADD, tariff_form(price="999,00"))

        text = summary(response)
        assert "New tariff “Family quarterly” at 999.00 RUB every 3 months." in text
        assert "goes on the storefront at once" in text
        assert not Tariff.objects.exists()

    def test_confirmation_posts_back_what_was_typed_and_saves_it(self, login_as):
        client = login_as("Manager")
        page = client.post(TARIFF_ADD, tariff_form(price="1 999,00"))
        posted = dict(page.context["posted"])

        response = client.post(TARIFF_ADD, posted | CONFIRMED)

        assert response.status_code == 302
        tariff = Tariff.objects.get()
        assert (tariff.amount, tariff.currency, tariff.period_count, tariff.is_active) == (
            199900,
            "RUB",
            3,
            True,
        )

    def test_inactive_tariff_is_confirmed_as_staying_off_the_storefront(self, login_as):
        data = tariff_form()
        del data["is_active"]

        text = summary(login_as("Manager").post(TARIFF_ADD, data))

        assert "It stays off the storefront until it is activated." in text

    @pytest.mark.parametrize(
        ("price", "message"),
        [
            ("1,999.00", "Use either a point or a comma before the decimals, not both"),
            ("9,99,9", "Use one point or comma, before the decimals only"),
            ("1.999", "could mean thousands or decimals"),
            ("-5", "Enter an amount above zero."),
            ("", "This field is required."),
        ],
    )
    def test_ambiguous_price_is_refused_on_the_form_without_a_confirmation(self, login_as, price, message):
        response = login_as("Manager").post(TARIFF_ADD, tariff_form(price=price))

        assert response.status_code == 200
        assert "adminform" in response.context
        assert message in " ".join(response.context["adminform"].form.errors["price"])
        assert not Tariff.objects.exists()


class TestChangedTariff:
    def test_price_change_says_what_it_was_and_who_pays_which(self, login_as):
        tariff = TariffFactory(name="Monthly", amount=39900, period_count=1)
        SubscriptionFactory(tariff=tariff)

        text = summary(login_as("Manager").post(tariff_change(tariff), form_of(tariff, price="449.00")))

        assert "The price changes from 399.00 RUB every month to 449.00 RUB every month." in text
        assert "current subscribers keep theirs" in text
        tariff.refresh_from_db()
        assert tariff.amount == 39900

    def test_name_change_alone_is_saved_at_once(self, login_as):
        tariff = TariffFactory(name="Monthly", amount=39900)

        response = login_as("Manager").post(tariff_change(tariff), form_of(tariff, name="Monthly HD"))

        assert response.status_code == 302
        tariff.refresh_from_db()
        assert tariff.name == "Monthly HD"

    def test_activation_in_the_form_asks_first(self, login_as):
        tariff = TariffFactory(name="Kids", amount=19900, is_active=False)
        client = login_as("Manager")

        text = summary(client.post(tariff_change(tariff), form_of(tariff) | {"is_active": "on"}))
        tariff.refresh_from_db()
        assert not tariff.is_active
        assert "“Kids” goes on the storefront at once at 199.00 RUB every month" in text

        client.post(tariff_change(tariff), form_of(tariff) | {"is_active": "on"} | CONFIRMED)
        tariff.refresh_from_db()
        assert tariff.is_active

    def test_activate_action_lists_the_tariffs_with_their_prices_before_activating(self, login_as):
        kids = TariffFactory(name="Kids", amount=19900, is_active=False)
        client = login_as("Manager")

        page = client.post(TARIFF_LIST, {"action": "activate", "_selected_action": [kids.pk]})

        assert "“Kids” goes on the storefront at once at 199.00 RUB every month" in summary(page)
        kids.refresh_from_db()
        assert not kids.is_active
        confirmed = client.post(TARIFF_LIST, dict(page.context["posted"]) | CONFIRMED, follow=True)
        assert "1 tariff was activated." in confirmed.content.decode()
        kids.refresh_from_db()
        assert kids.is_active

    def test_currency_change_under_a_fixed_code_in_the_old_currency_is_refused(self, login_as):
        tariff = TariffFactory(name="Monthly", amount=39900, currency="RUB")
        PromoCodeFactory(code="MINUS100", fixed=True, tariffs=[tariff])

        response = login_as("Manager").post(
            tariff_change(tariff), form_of(tariff, currency="USD") | CONFIRMED
        )

        assert response.status_code == 200
        assert response.context["adminform"].form.errors["currency"] == [
            "Fixed-amount promo codes in another currency apply to this tariff: MINUS100. "
            "Limit them to tariffs in their currency first."
        ]
        tariff.refresh_from_db()
        assert tariff.currency == "RUB"

    def test_activating_a_tariff_every_fixed_code_in_another_currency_applies_to_is_refused(self, login_as):
        dollars = TariffFactory(name="Dollars", amount=499, currency="USD", is_active=False)
        PromoCodeFactory(code="MINUS100", fixed=True)  # 100.00 RUB off every tariff

        response = login_as("Manager").post(
            TARIFF_LIST, {"action": "activate", "_selected_action": [dollars.pk]} | CONFIRMED, follow=True
        )

        assert (
            "fixed-amount promo codes in another currency apply to it: MINUS100" in response.content.decode()
        )
        dollars.refresh_from_db()
        assert not dollars.is_active


class TestPromoAmounts:
    def test_fixed_amount_is_read_back_and_saved_once_confirmed(self, login_as):
        monthly = TariffFactory(name="Monthly", currency="RUB")
        client = login_as("Manager")

        page = client.post(PROMO_ADD, promo_form(amount="1 000,50", tariffs=[str(monthly.pk)]))
        assert "New promo code WINTER100: 1,000.50 RUB off, first period, on Monthly." in summary(page)
        assert not PromoCode.objects.exists()

        posted: dict[str, list[str]] = {}
        for name, value in page.context["posted"]:
            posted.setdefault(name, []).append(value)
        response = client.post(PROMO_ADD, posted | CONFIRMED)

        assert response.status_code == 302
        promo = PromoCode.objects.get()
        assert (promo.amount_off, promo.currency, list(promo.tariffs.all())) == (100050, "RUB", [monthly])

    def test_changed_amount_says_what_it_was(self, login_as):
        monthly = TariffFactory(name="Monthly", currency="RUB")
        promo = PromoCodeFactory(code="WINTER100", fixed=True, tariffs=[monthly])
        change = reverse("admin:tariffs_promocode_change", args=[promo.pk])

        page = login_as("Manager").post(change, promo_form(amount="150", tariffs=[str(monthly.pk)]))

        assert "changes from 100.00 RUB off, first period to 150.00 RUB off, first period" in summary(page)
        promo.refresh_from_db()
        assert promo.amount_off == 10000

    def test_fixed_amount_in_another_currency_than_its_tariffs_is_refused(self, login_as):
        monthly = TariffFactory(name="Monthly", currency="RUB")
        dollars = TariffFactory(name="Dollars", amount=499, currency="USD")

        response = login_as("Manager").post(
            PROMO_ADD,
            promo_form(currency="USD", amount="5", tariffs=[str(monthly.pk), str(dollars.pk)]) | CONFIRMED,
        )

        assert response.context["adminform"].form.errors["currency"] == [
            "The amount is in USD, but these tariffs are not: Monthly."
        ]
        assert not PromoCode.objects.exists()

    def test_fixed_amount_for_every_tariff_needs_every_active_tariff_in_its_currency(self, login_as):
        TariffFactory(name="Monthly", currency="RUB")
        TariffFactory(name="Old dollars", amount=499, currency="USD", is_active=False)

        client = login_as("Manager")

        refused = client.post(PROMO_ADD, promo_form(currency="USD", amount="5") | CONFIRMED)
        accepted = client.post(PROMO_ADD, promo_form(currency="RUB", amount="5") | CONFIRMED)

        assert (
            "select the tariffs in USD it applies to"
            in refused.context["adminform"].form.errors["currency"][0]
        )
        assert accepted.status_code == 302
        assert PromoCode.objects.get().currency == "RUB"
