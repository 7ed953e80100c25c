"""Managers keep the catalogue in the admin, typing prices as people read them."""

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from billing.tests.factories import SubscriptionFactory
from tariffs.models import PeriodUnit, Tariff
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:tariffs_tariff_add")
CHANGELIST_URL = reverse("admin:tariffs_tariff_changelist")


def change_url(tariff: Tariff) -> str:
    return reverse("admin:tariffs_tariff_change", args=[tariff.pk])


def tariff_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Monthly HD",
        "slug": "monthly-hd",
        "description": "Every film in HD.",
        "price": "399.00",
        "currency": "RUB",
        "period_count": "1",
        "period_unit": PeriodUnit.MONTH,
        "trial_days": "0",
        "is_active": "on",
        "display_order": "10",
        # As the confirmation page posts it (tariffs/tests/test_admin_confirmation.py asks first).
        "_confirmed": "Yes, save",
    }
    return data | overrides


def price_errors(response) -> list[str]:
    return response.context["adminform"].form.errors.get("price", [])


class TestPriceEntry:
    def test_manager_adds_tariff_with_price_in_major_units(self, login_as):
        response = login_as("Manager").post(ADD_URL, tariff_form(price="399.00", currency="rub"))

        assert response.status_code == 302
        tariff = Tariff.objects.get(slug="monthly-hd")
        assert (tariff.amount, tariff.currency) == (39900, "RUB")

    def test_price_with_more_decimals_than_the_currency_has_is_refused(self, login_as):
        response = login_as("Manager").post(ADD_URL, tariff_form(price="399.0011"))

        assert response.status_code == 200
        assert price_errors(response) == ["RUB amounts have at most 2 decimal places."]
        assert not Tariff.objects.exists()

    def test_zero_decimal_currency_takes_whole_units_only(self, login_as):
        client = login_as("Manager")

        refused = client.post(ADD_URL, tariff_form(price="500.50", currency="JPY"))
        accepted = client.post(ADD_URL, tariff_form(price="500", currency="JPY"))

        assert price_errors(refused) == ["JPY amounts have at most 0 decimal places."]
        assert accepted.status_code == 302
        assert Tariff.objects.get().amount == 500

    @pytest.mark.parametrize("price", ["0", "0.00", "-1.00"])
    def test_zero_or_negative_price_is_refused(self, login_as, price):
        response = login_as("Manager").post(ADD_URL, tariff_form(price=price))

        assert price_errors(response) == ["Enter an amount above zero."]
        assert not Tariff.objects.exists()

    @pytest.mark.parametrize("currency", ["RU", "RUBL", "R1B", "РУБ"])
    def test_currency_that_is_not_three_letters_is_refused(self, login_as, currency):
        response = login_as("Manager").post(ADD_URL, tariff_form(currency=currency))

        assert response.status_code == 200
        assert "currency" in response.context["adminform"].form.errors
        assert not Tariff.objects.exists()

    def test_change_form_shows_price_in_major_units_and_says_who_pays_it(self, login_as):
        tariff = TariffFactory(amount=39900, currency="RUB")

        response = login_as("Manager").get(change_url(tariff))

        content = response.content.decode()
        assert 'name="price" value="399.00"' in content
        assert 'type="number"' not in content.split('name="price"')[0].rsplit("<input", 1)[-1]
        assert "A new price applies to new subscriptions only" in content

    def test_new_price_leaves_current_subscribers_on_theirs(self, login_as):
        tariff = TariffFactory(slug="monthly-hd", amount=39900)
        subscription = SubscriptionFactory(tariff=tariff)

        response = login_as("Manager").post(change_url(tariff), tariff_form(price="449.00"))

        assert response.status_code == 302
        tariff.refresh_from_db()
        subscription.refresh_from_db()
        assert tariff.amount == 44900
        assert subscription.amount == 39900


class TestChangelist:
    def test_list_shows_price_as_money_and_period_in_words(self, login_as):
        TariffFactory(name="Monthly", amount=39900, currency="RUB")
        TariffFactory(name="Yearly", amount=399000, period_unit=PeriodUnit.YEAR, trial_days=7)
        TariffFactory(name="Quarterly", period_count=3)

        content = login_as("Manager").get(CHANGELIST_URL).content.decode()

        for text in ("399.00 RUB", "3,990.00 RUB", "1 month", "1 year", "3 months"):
            assert text in content

    def test_list_sorts_by_price_amount(self, login_as):
        TariffFactory(name="Dear", amount=100000)
        TariffFactory(name="Cheap", amount=9900)
        client = login_as("Manager")
        column = client.get(CHANGELIST_URL).context["cl"].list_display.index("price")

        response = client.get(CHANGELIST_URL, {"o": str(column)})

        assert [t.name for t in response.context["cl"].result_list] == ["Cheap", "Dear"]

    def test_filters_by_currency_of_the_catalogue(self, login_as):
        TariffFactory(name="Roubles", currency="RUB")
        TariffFactory(name="Dollars", amount=499, currency="USD")

        response = login_as("Manager").get(CHANGELIST_URL, {"currency": "USD"})

        assert [t.name for t in response.context["cl"].result_list] == ["Dollars"]

    def test_search_finds_tariff_by_description(self, login_as):
        TariffFactory(name="Kids", description="Cartoons only.")
        TariffFactory(name="Family", description="Everything.")

        response = login_as("Manager").get(CHANGELIST_URL, {"q": "cartoons"})

        assert [t.name for t in response.context["cl"].result_list] == ["Kids"]


class TestActivation:
    def test_deactivate_action_flips_tariffs_and_says_how_many(self, login_as):
        first, second = TariffFactory(is_active=True), TariffFactory(is_active=True)
        untouched = TariffFactory(is_active=True)

        response = login_as("Manager").post(
            CHANGELIST_URL,
            {"action": "deactivate", "_selected_action": [first.pk, second.pk]},
            follow=True,
        )

        assert "2 tariffs were deactivated." in response.content.decode()
        assert list(Tariff.objects.filter(is_active=True)) == [untouched]
        # Each flip is in the audit log, with the manager who made it.
        logged = LogEntry.objects.filter(action=LogEntry.Action.UPDATE).select_related("actor")
        assert {(int(e.object_pk), e.actor.username, e.changes_dict["is_active"][1]) for e in logged} == {
            (first.pk, "manager", "False"),
            (second.pk, "manager", "False"),
        }

    def test_activate_action_counts_only_tariffs_it_changed(self, login_as):
        inactive = TariffFactory(is_active=False)
        already_active = TariffFactory(is_active=True)

        response = login_as("Manager").post(
            CHANGELIST_URL,
            {"action": "activate", "_selected_action": [inactive.pk, already_active.pk], "_confirmed": "Yes"},
            follow=True,
        )

        assert "1 tariff was activated." in response.content.decode()
        inactive.refresh_from_db()
        assert inactive.is_active

    def test_activation_is_recorded_in_the_tariff_history(self, login_as):
        tariff = TariffFactory(is_active=False)
        client = login_as("Manager")
        client.post(
            CHANGELIST_URL, {"action": "activate", "_selected_action": [tariff.pk], "_confirmed": "Yes"}
        )

        history = client.get(reverse("admin:tariffs_tariff_history", args=[tariff.pk]))

        assert "Changed active." in history.content.decode()


class TestRoles:
    def test_support_is_refused_the_tariff_change_form(self, login_as):
        tariff = TariffFactory()

        assert login_as("Support").get(change_url(tariff)).status_code == 403

    def test_accounting_reads_tariff_with_its_price_but_cannot_change_it(self, login_as):
        tariff = TariffFactory(amount=39900, is_active=True)
        client = login_as("Accounting")

        page = client.get(change_url(tariff))
        changelist = client.get(CHANGELIST_URL)
        posted = client.post(change_url(tariff), tariff_form(price="1.00"))

        assert page.status_code == 200
        assert "399.00 RUB" in page.content.decode()
        assert 'name="_save"' not in page.content.decode()
        assert changelist.context["action_form"] is None
        assert posted.status_code == 403
        tariff.refresh_from_db()
        assert tariff.amount == 39900
