"""Support sees every Stripe event with its status and can replay one; accounting only reads."""

import pytest
from django.utils import timezone

from accounts.tests.roles import staff_member
from payments.models import WebhookEvent, WebhookEventStatus

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/payments/webhookevent/"


@pytest.fixture
def failed_event():
    return WebhookEvent.objects.create(
        event_id="evt_failed_1",
        type="checkout.session.completed",
        object_id="cs_test_1",
        provider_created_at=timezone.now(),
        payload={"id": "cs_test_1"},
        status=WebhookEventStatus.FAILED,
        attempts=3,
        last_error="TemporaryGatewayError: Stripe did not answer",
    )


def test_support_finds_an_event_by_its_object_and_sees_the_error(client, failed_event):
    client.force_login(staff_member("Support"))
    response = client.get(CHANGELIST, {"q": "cs_test_1"})
    assert response.status_code == 200
    assert "evt_failed_1" in response.content.decode()
    detail = client.get(f"{CHANGELIST}{failed_event.pk}/change/").content.decode()
    assert "Stripe did not answer" in detail


def test_support_reprocesses_a_failed_event(client, failed_event, django_capture_on_commit_callbacks):
    client.force_login(staff_member("Support"))
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            CHANGELIST, {"action": "reprocess", "_selected_action": [failed_event.pk]}, follow=True
        )
    assert "1 event queued for processing." in response.content.decode()
    failed_event.refresh_from_db()
    assert failed_event.status == WebhookEventStatus.RECEIVED
    assert len(queued) == 1


def test_accounting_cannot_reprocess(client, failed_event):
    client.force_login(staff_member("Accounting"))
    page = client.get(CHANGELIST).content.decode()
    assert 'value="reprocess"' not in page
    client.post(CHANGELIST, {"action": "reprocess", "_selected_action": [failed_event.pk]})
    failed_event.refresh_from_db()
    assert failed_event.status == WebhookEventStatus.FAILED
