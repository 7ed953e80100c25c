"""A tariff's name and description in the viewer's language: storefront API, checkout, emails and receipts."""

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import BillingAccount
from billing.models import Subscription
from notifications.services.notices import notices_dispatch
from payments.models import CheckoutSession
from payments.services.checkout import checkout_sync
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db
TARIFFS_URL = "/api/v1/tariffs/"


@pytest.fixture
def monthly():
    return TariffFactory(
        slug="monthly",
        name="Monthly",
        name_ru="Месячный",
        description="Every film, billed monthly.",
        description_ru="Все фильмы, оплата раз в месяц.",  # noqa: RUF001 - Russian
    )


def catalogue(language: str | None) -> list[dict]:
    client = APIClient()
    if language:
        client.credentials(HTTP_ACCEPT_LANGUAGE=language)
    response = client.get(TARIFFS_URL)
    assert response.status_code == 200
    return response.json()["results"]


class TestCatalogue:
    def test_russian_viewer_reads_the_russian_name_and_description(self, monthly):
        (tariff,) = catalogue("ru-RU,ru;q=0.9,en;q=0.5")

        russian = ("Месячный", "Все фильмы, оплата раз в месяц.")  # noqa: RUF001 - Russian
        assert (tariff["name"], tariff["description"]) == russian

    @pytest.mark.parametrize("language", ["en-US", None, "de"])
    def test_other_viewers_read_the_english_text(self, monthly, language):
        (tariff,) = catalogue(language)

        assert (tariff["name"], tariff["description"]) == ("Monthly", "Every film, billed monthly.")

    def test_tariff_without_russian_text_shows_the_english_text_in_russian(self):
        TariffFactory(name="Yearly", description="Billed yearly.")

        (tariff,) = catalogue("ru")

        assert (tariff["name"], tariff["description"]) == ("Yearly", "Billed yearly.")

    def test_the_catalogue_keeps_its_fields(self, monthly):
        (tariff,) = catalogue("ru")

        assert set(tariff) == {
            "id",
            "slug",
            "name",
            "description",
            "amount",
            "currency",
            "period",
            "trial_days",
            "provider",  # who takes the payments (issue 12)
        }


def subscribe_and_pay(viewer_client, provider, user_id: str) -> Subscription:
    body = viewer_client(user_id).post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json").json()
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    assert checkout.provider_session_id is not None
    assert provider.pay(checkout.provider_session_id, "4242424242424242").outcome == "succeeded"
    checkout_sync(provider_session_id=checkout.provider_session_id)
    return Subscription.objects.get(pk=checkout.subscription_id)


@pytest.mark.parametrize(("language", "name"), [("ru", "Месячный"), ("en", "Monthly")])
def test_receipt_and_checkout_name_the_tariff_in_the_viewers_language(
    viewer_client, memory_provider, monthly, language, name
):
    BillingAccount.objects.create(user_id="olga", email="olga@example.com", language=language)

    subscription = subscribe_and_pay(viewer_client, memory_provider, "olga")
    notices_dispatch()

    (receipt,) = mail.outbox
    assert name in receipt.subject
    assert name in receipt.body
    # The provider's checkout page showed the same name.
    session_id = subscription.checkout_sessions.get().provider_session_id
    assert memory_provider.product_name(session_id) == name
