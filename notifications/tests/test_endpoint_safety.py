"""Event endpoints cannot aim the service at its neighbours, nor show staff what a URL answers.

Under production settings (EVENT_ENDPOINTS_ALLOW_PRIVATE off) an endpoint typed in admin must
be https on a host that resolves to public addresses only, checked when it is saved and again
before each POST, which goes to the address that was checked. Its signing secret can be typed
in but is never shown back.
"""

import importlib
import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.db import transaction
from django.urls import reverse

from billing.tests.factories import SubscriptionFactory
from notifications.models import DeliveryStatus, EventDelivery, EventEndpoint
from notifications.services import endpoints
from notifications.services.endpoints import (
    EndpointAddressNotPublic,
    EndpointUrlRefused,
    endpoint_url_validate,
)
from notifications.services.events import deliveries_dispatch, event_publish

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"
ADD_URL = "admin:notifications_eventendpoint_add"


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str] | Callable[[], list[str]]]:
    """Return a table of made-up host names and their addresses (or a function giving them)."""
    table: dict[str, list[str] | Callable[[], list[str]]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in table:
            return real(host, port, *args, **kwargs)
        answer = table[host]
        addresses = answer() if callable(answer) else answer
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    monkeypatch.setattr(endpoints.socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def production(settings) -> None:
    settings.EVENT_ENDPOINTS_ALLOW_PRIVATE = False


def publish_one() -> None:
    with transaction.atomic():
        event_publish(type="access.granted", subscription=SubscriptionFactory.create(), payload={})


def add_endpoint(client, url: str, **extra: str):
    return client.post(reverse(ADD_URL), {"name": "access", "url": url, "active": "on", **extra})


@pytest.mark.usefixtures("production")
class TestWhenSaved:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/events",
            "https://127.0.0.1/events",
            "https://localhost:8000/events",
            "https://[::1]/events",
            "https://[::ffff:127.0.0.1]/events",
            "https://10.0.0.5/events",
            "https://192.168.1.10/events",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/events",
            "https://224.0.0.1/events",
            "https://0.0.0.0/events",
            "https://internal.example/events",
            "https://half-internal.example/events",
            "http://events.example.com/events",
            "ftp://events.example.com/events",
        ],
    )
    def test_admin_refuses_what_is_not_https_on_a_public_address(self, admin_client, dns, url):
        dns["internal.example"] = ["10.1.2.3"]
        dns["half-internal.example"] = [PUBLIC, "10.1.2.3"]
        dns["events.example.com"] = [PUBLIC]

        response = add_endpoint(admin_client, url)

        assert response.status_code == 200
        assert response.context["adminform"].form.errors["url"]
        assert not EventEndpoint.objects.exists()

    def test_admin_accepts_https_on_a_public_address(self, admin_client, dns):
        dns["events.example.com"] = [PUBLIC]

        response = add_endpoint(admin_client, "https://events.example.com/billing")

        assert response.status_code == 302
        assert EventEndpoint.objects.get().url == "https://events.example.com/billing"

    def test_the_reason_is_told_without_the_address(self, dns):
        dns["internal.example"] = ["10.1.2.3"]

        with pytest.raises(EndpointAddressNotPublic) as refused:
            endpoint_url_validate(url="https://internal.example/events")

        assert "10.1.2.3" not in refused.value.message % refused.value.details

    def test_an_unknown_host_is_refused(self):
        with pytest.raises(EndpointUrlRefused):
            endpoint_url_validate(url="https://no-such-host.invalid/events")

    def test_locally_http_and_private_addresses_are_allowed(self, settings):
        settings.EVENT_ENDPOINTS_ALLOW_PRIVATE = True

        endpoint_url_validate(url="http://127.0.0.1:9000/events")

        with pytest.raises(EndpointUrlRefused):
            endpoint_url_validate(url="ftp://127.0.0.1/events")


class TestWhenDelivered:
    @pytest.mark.usefixtures("production")
    def test_a_host_that_now_resolves_to_a_private_address_gets_nothing(self, admin_client, dns, receiver):
        dns["events.example.com"] = [PUBLIC]
        assert add_endpoint(admin_client, f"https://events.example.com:{receiver.port}/e").status_code == 302
        dns["events.example.com"] = ["127.0.0.1"]  # DNS changed after the save
        publish_one()

        deliveries_dispatch()

        assert receiver.received == []
        delivery = EventDelivery.objects.get()
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.last_error.startswith("not sent: The host events.example.com is a private")
        assert delivery.attempts == 1  # counted and retried later, like any failed try

    @pytest.mark.usefixtures("production")
    def test_an_endpoint_saved_before_the_rule_is_refused_at_delivery(self, receiver):
        EventEndpoint.objects.create(url=receiver.url, secret="whsec_old")  # http on 127.0.0.1
        publish_one()

        deliveries_dispatch()

        assert receiver.received == []
        assert (
            EventDelivery.objects.get().last_error
            == "not sent: Events cannot be sent to http URLs: use https."
        )

    def test_the_post_goes_to_the_address_that_was_checked(self, dns, receiver):
        # A rebinding name: the first lookup says one thing, later ones another.
        answers = iter([["127.0.0.1"]])
        dns["receiver.example"] = lambda: next(answers, ["192.0.2.1"])
        EventEndpoint.objects.create(url=f"http://receiver.example:{receiver.port}/e", secret="whsec_x")
        publish_one()

        deliveries_dispatch()

        assert EventDelivery.objects.get().status == DeliveryStatus.DELIVERED
        [received] = receiver.received
        assert received.headers["Host"] == f"receiver.example:{receiver.port}"

    def test_staff_see_the_status_not_what_the_receiver_answered(self, endpoint, receiver, admin_client):
        receiver.answer = lambda body, headers: 500
        receiver.answer_body = b"redis_version:7.2.4 root password=hunter2"
        publish_one()

        deliveries_dispatch()

        delivery = EventDelivery.objects.get()
        assert (delivery.last_status_code, delivery.last_error) == (500, "HTTP 500")
        page = admin_client.get(reverse("admin:notifications_eventdelivery_change", args=[delivery.pk]))
        assert "hunter2" not in page.content.decode()

    def test_answers_kept_by_earlier_versions_are_cut_to_the_status(self, endpoint):
        publish_one()
        EventDelivery.objects.update(last_status_code=500, last_error="HTTP 500: redis_version:7.2.4")
        migration = importlib.import_module("notifications.migrations.0004_delivery_errors_without_answers")

        migration.keep_the_status_only(apps, None)

        assert EventDelivery.objects.get().last_error == "HTTP 500"


class TestSecretIsWriteOnly:
    SECRET = "whsec_0123456789abcdef0123wxyz"

    @pytest.fixture
    def saved(self) -> EventEndpoint:
        return EventEndpoint.objects.create(
            name="access", url="https://access.internal/e", secret=self.SECRET
        )

    def change(self, client, endpoint: EventEndpoint, **data: str):
        url = reverse("admin:notifications_eventendpoint_change", args=[endpoint.pk])
        return client.post(url, {"name": endpoint.name, "url": endpoint.url, "active": "on", **data})

    def test_list_and_page_show_only_that_it_is_set(self, admin_client, saved):
        listing = admin_client.get(reverse("admin:notifications_eventendpoint_changelist")).content.decode()
        page = admin_client.get(reverse("admin:notifications_eventendpoint_change", args=[saved.pk]))
        html = page.content.decode()

        assert self.SECRET not in listing
        assert self.SECRET not in html
        assert "set, ends in …wxyz" in listing
        assert "set, ends in …wxyz" in html
        assert 'type="password" name="new_secret"' in html

    def test_left_empty_on_edit_the_secret_is_kept(self, admin_client, saved):
        assert self.change(admin_client, saved, name="renamed").status_code == 302

        saved.refresh_from_db()
        assert (saved.name, saved.secret) == ("renamed", self.SECRET)

    def test_a_typed_secret_replaces_it(self, admin_client, saved):
        self.change(admin_client, saved, new_secret="whsec_new_secret_typed_in")

        saved.refresh_from_db()
        assert saved.secret == "whsec_new_secret_typed_in"

    def test_a_new_endpoint_shows_its_generated_secret_once(self, admin_client):
        saved = add_endpoint(admin_client, "https://access.internal/e")
        endpoint = EventEndpoint.objects.get()

        assert endpoint.secret.startswith("whsec_")
        shown = admin_client.get(saved["Location"]).content.decode()
        assert endpoint.secret in shown
        page = admin_client.get(reverse("admin:notifications_eventendpoint_change", args=[endpoint.pk]))
        assert endpoint.secret not in page.content.decode()

    def test_staff_who_may_only_look_do_not_see_it(self, client, saved):
        viewer = User.objects.create_user(username="looker", is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_eventendpoint"))
        client.force_login(viewer)

        page = client.get(reverse("admin:notifications_eventendpoint_change", args=[saved.pk]))

        assert page.status_code == 200
        assert self.SECRET not in page.content.decode()
        assert "set, ends in …wxyz" in page.content.decode()
