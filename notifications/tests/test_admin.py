"""Support sees what was sent and sends it again; accounting only looks; admins manage endpoints."""

import pytest
from django.db import transaction
from django.urls import reverse

from accounts.tests.roles import staff_member
from billing.services import subscription_expire
from billing.tests.factories import SubscriptionFactory
from core import clock
from notifications.models import DeliveryStatus, EndpointSource, EventDelivery, EventEndpoint, Notice
from notifications.services.events import deliveries_dispatch
from notifications.services.notices import notices_dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def expired(endpoint, receiver):
    """Return a subscription that expired: two events delivered, one email sent."""
    subscription = SubscriptionFactory(account__user_id="viewer-7", tariff__name="Monthly HD")
    with transaction.atomic():
        subscription_expire(subscription=subscription, at=clock.now())
    deliveries_dispatch()
    notices_dispatch()
    return subscription


def test_support_reads_a_sent_email_and_sends_it_again(client, expired):
    client.force_login(staff_member("Support"))
    notice = Notice.objects.get()

    found = client.get(reverse("admin:notifications_notice_changelist"), {"q": "viewer-7"})
    page = client.get(reverse("admin:notifications_notice_change", args=[notice.pk])).content.decode()
    client.post(
        reverse("admin:notifications_notice_changelist"),
        {"action": "send_again", "_selected_action": [str(notice.pk)]},
    )

    assert list(found.context["cl"].result_list) == [notice]
    assert "Your Monthly HD subscription has ended" in page
    assert "iframe sandbox" in page
    notice.refresh_from_db()
    assert notice.status == "pending"
    assert notices_dispatch() == 1


def test_support_redelivers_an_event_and_sees_the_log(client, expired, receiver):
    client.force_login(staff_member("Support"))
    delivery = EventDelivery.objects.order_by("sequence").first()
    assert delivery is not None

    page = client.get(reverse("admin:notifications_eventdelivery_change", args=[delivery.pk]))
    client.post(
        reverse("admin:notifications_eventdelivery_changelist"),
        {"action": "redeliver", "_selected_action": [str(delivery.pk)]},
    )

    assert page.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    deliveries_dispatch()
    assert len(receiver.received) == 3
    assert client.get(reverse("admin:notifications_outboxevent_changelist")).status_code == 200


def test_accounting_looks_but_cannot_send_again(client, expired):
    client.force_login(staff_member("Accounting"))
    notice = Notice.objects.get()

    listing = client.get(reverse("admin:notifications_notice_changelist"))
    client.post(
        reverse("admin:notifications_notice_changelist"),
        {"action": "send_again", "_selected_action": [str(notice.pk)]},
    )
    deliveries = client.get(reverse("admin:notifications_eventdelivery_changelist"))

    assert listing.status_code == 200
    assert "send_again" not in listing.content.decode()
    assert "redeliver" not in deliveries.content.decode()
    notice.refresh_from_db()
    assert notice.status == "sent"
    assert client.get(reverse("admin:notifications_eventendpoint_changelist")).status_code == 403


def test_admins_add_endpoints_and_see_the_environments_read_only(admin_client, settings):
    response = admin_client.post(
        reverse("admin:notifications_eventendpoint_add"),
        {
            "name": "access",
            "url": "https://access.internal/billing-events",
            "new_secret": "whsec_access",
            "event_types": ["access.granted", "access.revoked"],
            "active": "on",
        },
    )
    settings.EVENT_SIGNING_SECRET = "whsec_env"
    settings.EVENT_ENDPOINTS = [{"url": "https://audit.internal/events"}]
    with transaction.atomic():
        subscription_expire(subscription=SubscriptionFactory(), at=clock.now())
    from_environment = EventEndpoint.objects.get(source=EndpointSource.ENVIRONMENT)

    listing = admin_client.get(reverse("admin:notifications_eventendpoint_changelist")).content.decode()
    page = admin_client.get(reverse("admin:notifications_eventendpoint_change", args=[from_environment.pk]))

    assert response.status_code == 302
    added = EventEndpoint.objects.get(source=EndpointSource.ADMIN)
    assert (added.url, added.event_types) == (
        "https://access.internal/billing-events",
        ["access.granted", "access.revoked"],
    )
    assert "access.granted, access.revoked" in listing
    assert 'name="url"' not in page.content.decode()
    # The admin endpoint wants both events; the environment's takes every type.
    assert EventDelivery.objects.filter(endpoint=added).count() == 1
    assert EventDelivery.objects.filter(endpoint=from_environment).count() == 2
