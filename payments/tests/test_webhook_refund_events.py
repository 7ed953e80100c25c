"""A refund's own events settle it: a failed one releases the amount, a succeeded one moves it once."""

from datetime import UTC, datetime
from typing import Any

import pytest

from payments.models import Payment, PaymentStatus, Refund, RefundStatus, WebhookEvent, WebhookEventStatus
from payments.services.webhooks import EventProcessingFailed, webhook_event_process
from payments.tests.refund_helpers import pay

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def payment(viewer_client, memory_provider) -> Payment:
    return pay(viewer_client, memory_provider)


@pytest.fixture
def pending_refund(payment) -> Refund:
    """A refund of 100.00 of the 399.00 that the provider accepted and has not finished."""
    return Refund.objects.create(
        payment=payment, amount=10000, currency=payment.currency, provider_refund_id="re_pending"
    )


def deliver(type_: str, obj: dict[str, Any], event_id: str = "evt_refund") -> WebhookEvent:
    """Store a provider's event as the webhook does, then process it as the worker does."""
    stored, _ = WebhookEvent.objects.get_or_create(
        provider="stripe",
        event_id=event_id,
        defaults={
            "type": type_,
            "object_id": obj.get("id") or "",
            "provider_created_at": datetime(2027, 1, 1, tzinfo=UTC),
            "payload": obj,
        },
    )
    processed = webhook_event_process(event_pk=stored.pk)
    assert processed is not None
    return processed


def refund_json(refund: Refund, payment: Payment, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": refund.provider_refund_id,
        "object": "refund",
        "status": status,
        "amount": refund.amount,
        "currency": payment.currency.lower(),
        "payment_intent": payment.provider_payment_id,
        "metadata": {"refund_id": str(refund.pk)},
        "created": 1798761600,
        **extra,
    }


def test_a_failed_refund_releases_the_amount_and_says_why(payment, pending_refund):
    event = deliver(
        "refund.failed",
        refund_json(pending_refund, payment, "failed", failure_reason="expired_or_canceled_card"),
    )

    assert event.status == WebhookEventStatus.PROCESSED
    pending_refund.refresh_from_db()
    payment.refresh_from_db()
    assert (pending_refund.status, pending_refund.failure_reason) == (
        RefundStatus.FAILED,
        "expired_or_canceled_card",
    )
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.SUCCEEDED, 0)


def test_a_succeeded_refund_moves_the_payment_once_however_often_it_is_told(payment, pending_refund):
    for event_id in ("evt_updated", "evt_updated", "evt_updated_again"):
        deliver("refund.updated", refund_json(pending_refund, payment, "succeeded"), event_id=event_id)

    pending_refund.refresh_from_db()
    payment.refresh_from_db()
    assert pending_refund.status == RefundStatus.SUCCEEDED
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 10000)


def test_a_final_status_never_moves_back(payment, pending_refund):
    deliver("refund.updated", refund_json(pending_refund, payment, "succeeded"), event_id="evt_1")
    deliver("refund.failed", refund_json(pending_refund, payment, "failed"), event_id="evt_2")

    pending_refund.refresh_from_db()
    payment.refresh_from_db()
    assert pending_refund.status == RefundStatus.SUCCEEDED
    assert payment.refunded_amount == 10000


def test_a_refund_made_in_the_providers_dashboard_gets_a_row_of_its_own(payment):
    deliver(
        "refund.created",
        {
            "id": "re_dashboard",
            "object": "refund",
            "status": "succeeded",
            "amount": 5000,
            "currency": payment.currency.lower(),
            "payment_intent": payment.provider_payment_id,
            "metadata": {},
            "created": 1798761600,
        },
    )

    made = Refund.objects.get(provider_refund_id="re_dashboard")
    payment.refresh_from_db()
    assert (made.payment_id, made.amount, made.status, made.provider) == (
        payment.pk,
        5000,
        RefundStatus.SUCCEEDED,
        "stripe",
    )
    assert made.comment == "Refunded in Stripe"
    assert made.succeeded_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert payment.refunded_amount == 5000


def test_an_event_we_do_not_act_on_is_ignored(payment):
    event = deliver("customer.updated", {"id": "cus_1", "object": "customer"})

    assert event.status == WebhookEventStatus.IGNORED


def test_an_unreadable_refund_fails_the_event_for_good_and_changes_nothing(payment, pending_refund):
    with pytest.raises(EventProcessingFailed) as raised:
        deliver("refund.updated", {"id": "re_pending", "object": "refund", "status": "reversed"})

    assert raised.value.retryable is False
    event = WebhookEvent.objects.get(event_id="evt_refund")
    assert event.status == WebhookEventStatus.FAILED
    assert "unexpected provider response" in event.last_error
    pending_refund.refresh_from_db()
    assert pending_refund.status == RefundStatus.PENDING
