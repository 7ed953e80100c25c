"""One registry picks each provider's gateway, and each provider's webhooks arrive at their own route."""

import json
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from payments.gateways import UnknownProvider, default_provider, get_gateway
from payments.gateways.base import GatewayEvent
from payments.gateways.errors import InvalidWebhookSignature
from payments.gateways.stripe import StripeGateway
from payments.models import WebhookEvent

STRIPE = "payments.gateways.stripe_setup.gateway_from_settings"
OTHER = "payments.tests.test_gateway_registry.other_provider_gateway"


class OtherProviderGateway:
    """A second provider's webhooks: signed with one header, never acted on."""

    webhook_signature_header = "X-Other-Signature"

    def parse_webhook(self, payload: bytes, signature_header: str) -> GatewayEvent:
        if signature_header != "signed":
            raise InvalidWebhookSignature("not signed", code="invalid_signature")
        data = json.loads(payload)
        return GatewayEvent(
            id=data["id"],
            type=data["type"],
            created=datetime(2027, 1, 1, tzinfo=UTC),
            object_id=None,
            object={},
        )

    def event_fact(self, event: GatewayEvent) -> None:
        return None


_OTHER = OtherProviderGateway()


def other_provider_gateway() -> OtherProviderGateway:
    return _OTHER


@pytest.fixture
def two_providers(settings):
    settings.PAYMENT_PROVIDERS = {"stripe": STRIPE, "other": OTHER}


class TestRegistry:
    def test_each_provider_name_gets_its_own_gateway(self, two_providers):
        assert isinstance(get_gateway("stripe"), StripeGateway)
        assert get_gateway("other") is _OTHER

    def test_without_a_name_the_default_provider_answers(self, two_providers, settings):
        assert default_provider() == "stripe"
        assert isinstance(get_gateway(), StripeGateway)
        settings.DEFAULT_PAYMENT_PROVIDER = "other"
        assert default_provider() == "other"
        assert get_gateway() is _OTHER

    def test_a_provider_the_settings_do_not_list_is_refused(self):
        with pytest.raises(UnknownProvider, match="'yookassa' is not one of the payment providers: stripe"):
            get_gateway("yookassa")

    def test_a_default_provider_the_settings_do_not_list_is_refused(self, settings):
        settings.DEFAULT_PAYMENT_PROVIDER = "other"
        with pytest.raises(ImproperlyConfigured, match="DEFAULT_PAYMENT_PROVIDER='other'"):
            default_provider()

    def test_the_memory_provider_answers_for_every_listed_provider(self, two_providers, memory_provider):
        assert get_gateway("stripe") is get_gateway("other")
        with pytest.raises(UnknownProvider):
            get_gateway("yookassa")


@pytest.mark.django_db
class TestWebhookRoutes:
    def post(self, client, provider: str, event_id: str, signature: str = "signed"):
        body = json.dumps({"id": event_id, "type": "payment.succeeded"})
        return client.post(
            f"/api/v1/webhooks/{provider}/",
            data=body,
            content_type="application/json",
            HTTP_X_OTHER_SIGNATURE=signature,
        )

    def test_a_providers_event_is_stored_as_its_own(self, api_client, two_providers):
        response = self.post(api_client, "other", "evt_1")

        assert response.status_code == 200
        assert response.json() == {"received": True, "duplicate": False}
        stored = WebhookEvent.objects.get()
        assert (stored.provider, stored.event_id) == ("other", "evt_1")

    def test_the_same_event_id_at_two_providers_is_two_events(self, api_client, two_providers):
        WebhookEvent.objects.create(
            provider="stripe",
            event_id="evt_1",
            type="charge.refunded",
            provider_created_at=datetime(2027, 1, 1, tzinfo=UTC),
            payload={},
        )

        assert self.post(api_client, "other", "evt_1").json()["duplicate"] is False
        assert self.post(api_client, "other", "evt_1").json()["duplicate"] is True
        assert sorted(WebhookEvent.objects.values_list("provider", flat=True)) == ["other", "stripe"]

    def test_the_providers_own_signature_header_is_checked(self, api_client, two_providers):
        response = self.post(api_client, "other", "evt_1", signature="forged")

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_signature"
        assert not WebhookEvent.objects.exists()

    def test_a_provider_this_service_does_not_use_is_not_found(self, api_client):
        response = self.post(api_client, "yookassa", "evt_1")

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert not WebhookEvent.objects.exists()
