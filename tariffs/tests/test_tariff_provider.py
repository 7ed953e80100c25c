"""A tariff says which payment provider takes its payments; YooKassa takes roubles only."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from payments.tests.yookassa_wiring import configure_yookassa
from tariffs.models import Tariff
from tariffs.services import tariff_clean
from tariffs.tests.factories import TariffFactory
from tariffs.tests.test_admin import ADD_URL, change_url, tariff_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_yookassa(settings):
    configure_yookassa(settings)


def form_errors(response, field: str) -> list[str]:
    return response.context["adminform"].form.errors.get(field, [])


class TestAdmin:
    def test_a_manager_puts_a_rouble_tariff_on_yookassa(self, login_as, with_yookassa):
        response = login_as("Manager").post(ADD_URL, tariff_form(provider="yookassa"))

        assert response.status_code == 302
        assert Tariff.objects.get().provider == "yookassa"

    def test_a_yookassa_tariff_in_another_currency_is_refused_in_words(self, login_as, with_yookassa):
        response = login_as("Manager").post(ADD_URL, tariff_form(provider="yookassa", currency="EUR"))

        assert response.status_code == 200
        assert form_errors(response, "provider") == [
            "YooKassa takes payments in RUB only: set the currency to RUB or choose another provider."
        ]
        assert not Tariff.objects.exists()

    def test_a_provider_this_deployment_does_not_configure_is_not_offered(self, login_as):
        response = login_as("Manager").post(ADD_URL, tariff_form(provider="yookassa"))

        assert response.status_code == 200
        assert form_errors(response, "provider")
        assert not Tariff.objects.exists()

    def test_without_a_choice_a_tariff_follows_the_default_provider(self, login_as, settings, with_yookassa):
        login_as("Manager").post(ADD_URL, tariff_form(provider=""))
        tariff = Tariff.objects.get()
        assert (tariff.provider, tariff.payment_provider) == ("", "stripe")

        settings.DEFAULT_PAYMENT_PROVIDER = "yookassa"

        assert tariff.payment_provider == "yookassa"

    def test_an_existing_tariff_keeps_its_provider_when_the_form_leaves_it_out(self, login_as, with_yookassa):
        tariff = TariffFactory(slug="monthly-hd", provider="yookassa", currency="RUB")

        form = tariff_form()
        response = login_as("Manager").post(change_url(tariff), form)

        assert response.status_code == 302
        tariff.refresh_from_db()
        assert tariff.provider == "yookassa"


class TestRules:
    def test_the_rouble_rule_is_the_services_and_the_databases(self):
        tariff = Tariff(slug="x", name="X", amount=100, currency="EUR", provider="yookassa")
        with pytest.raises(ValidationError) as refused:
            tariff_clean(tariff=tariff)
        assert refused.value.error_dict["provider"][0].code == "provider_currency"

        with pytest.raises(IntegrityError), transaction.atomic():
            Tariff.objects.create(slug="x", name="X", amount=100, currency="EUR", provider="yookassa")


class TestViewers:
    def test_the_catalogue_says_who_takes_the_money(self, api_client, with_yookassa):
        TariffFactory(slug="stripe-monthly", provider="stripe", display_order=1)
        TariffFactory(slug="yookassa-monthly", provider="yookassa", currency="RUB", display_order=2)

        results = api_client.get("/api/v1/tariffs/").json()["results"]

        assert [(t["slug"], t["provider"]) for t in results] == [
            ("stripe-monthly", "stripe"),
            ("yookassa-monthly", "yookassa"),
        ]

    def test_a_tariff_whose_provider_is_not_configured_cannot_be_subscribed(self, viewer_client):
        TariffFactory(slug="yookassa-monthly", provider="yookassa", currency="RUB")

        response = viewer_client("alice", "alice@example.com").post(
            "/api/v1/subscriptions/", {"tariff": "yookassa-monthly"}, format="json"
        )

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "tariff_unavailable"
