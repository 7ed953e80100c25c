"""No charge without a home: whatever our rows believed, money Stripe took is booked.

It pays for what it was for when that is still possible, and is otherwise refunded in full,
automatically, audited as the system's doing. The hourly sweep of Stripe's charges finds the
ones our rows missed, and the daily report lists them as fixed.
"""

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from billing.models import Subscription, SubscriptionStatus
from core import clock
from payments.gateways import get_gateway
from payments.gateways.base import CheckoutRequest, CreatedRange, CustomerRequest, OffSessionCharge
from payments.models import (
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    WebhookEvent,
)
from payments.services.checkout import checkout_sync
from payments.services.daily_report import reconciliation_report_for_day
from payments.services.reconciliation import (
    reconcile_events,
    reconcile_pending_payments,
    reconcile_unbooked_charges,
    unbooked_charges_window,
)
from payments.tasks import send_refund
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db
CARD = "4242 4242 4242 4242"


@pytest.fixture
def opened(viewer_client, stripe_sandbox):
    TariffFactory(slug="monthly", amount=39900, currency="RUB")
    body = (
        viewer_client("alice", "alice@example.com")
        .post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json")
        .json()
    )
    return CheckoutSession.objects.get(pk=body["checkout"]["id"])


def give_up_on_our_side(checkout: CheckoutSession) -> None:
    """Close our rows without telling Stripe: what a lost race or lost answer used to leave."""
    CheckoutSession.objects.filter(pk=checkout.pk).update(status=CheckoutStatus.EXPIRED)
    Payment.objects.filter(checkout_sessions=checkout).update(status=PaymentStatus.CANCELED)
    Subscription.objects.filter(pk=checkout.subscription_id).update(status=SubscriptionStatus.CANCELED)


def window() -> CreatedRange:
    now = timezone.now()
    return CreatedRange(start=now - timedelta(hours=1), end=now + timedelta(minutes=1))


def refunds_at_stripe(sandbox) -> list[dict]:
    return sandbox.objects("refund")


def test_a_page_paid_after_we_gave_up_on_it_is_booked_and_refunded(opened, stripe_sandbox):
    give_up_on_our_side(opened)
    stripe_sandbox.pay(opened.provider_session_id, CARD)
    checkout_sync(provider_session_id=opened.provider_session_id)

    payment = Payment.objects.get(pk=opened.payment_id)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_payment_id
    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.status, refund.created_by) == (39900, RefundStatus.PENDING, None)
    entry = LogEntry.objects.get(object_pk=str(refund.pk))
    assert entry.additional_data["action"] == "refund.automatic" and entry.actor is None
    # Sent once (a second run of the task replays nothing), and the money goes back.
    send_refund(str(refund.pk))
    send_refund(str(refund.pk))
    assert [r["amount"] for r in refunds_at_stripe(stripe_sandbox)] == [39900]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert Subscription.objects.get(pk=opened.subscription_id).status == SubscriptionStatus.CANCELED
    # Settling again changes nothing.
    checkout_sync(provider_session_id=opened.provider_session_id)
    assert Refund.objects.filter(payment=payment).count() == 1


def test_a_page_paid_while_its_subscription_still_waits_activates_it(opened, stripe_sandbox):
    CheckoutSession.objects.filter(pk=opened.pk).update(status=CheckoutStatus.EXPIRED)
    Payment.objects.filter(checkout_sessions=opened).update(status=PaymentStatus.CANCELED)
    stripe_sandbox.pay(opened.provider_session_id, CARD)
    checkout_sync(provider_session_id=opened.provider_session_id)
    assert Subscription.objects.get(pk=opened.subscription_id).status == SubscriptionStatus.ACTIVE
    assert Payment.objects.get(pk=opened.payment_id).status == PaymentStatus.SUCCEEDED
    assert not Refund.objects.exists()


def test_the_charge_sweep_books_what_every_webhook_missed_and_the_report_lists_it_fixed(
    opened, stripe_sandbox
):
    give_up_on_our_side(opened)
    stripe_sandbox.pay(opened.provider_session_id, CARD)  # no webhook ever arrives
    run = reconcile_unbooked_charges(window=window())
    assert run.status == "ok" and run.fixed == 1
    assert run.fixes[0]["outcome"] == "refunded"
    payment = Payment.objects.get(pk=opened.payment_id)
    assert payment.status == PaymentStatus.SUCCEEDED
    refund = Refund.objects.get(payment=payment)
    # The refund's task was never run here: the pending-payments run sends it.
    reconcile_pending_payments(older_than=timedelta(0))
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert len(refunds_at_stripe(stripe_sandbox)) == 1
    # A second sweep finds nothing left to do.
    assert reconcile_unbooked_charges(window=window()).fixed == 0
    report = reconciliation_report_for_day(day=timezone.now().date())
    assert [fix["charge"] for fix in report.fixed] == [payment.provider_charge_id]
    assert not [m for m in report.mismatches if m.kind == "missing_with_us"]


def test_a_charge_naming_rows_we_do_not_have_is_refunded_and_a_foreign_one_left_alone(
    stripe_sandbox, settings
):
    gateway = get_gateway()
    customer_id = gateway.create_customer(
        CustomerRequest(account_ref="ghost", email="ghost@example.com", idempotency_key="customer:ghost")
    )
    # Save a card through a setup page, then charge it twice: once for a payment of ours that
    # is gone (a restored backup, say), once with no metadata of ours (someone else's charge).
    setup = gateway.create_checkout_session(
        CheckoutRequest(
            mode="setup",
            customer_id=customer_id,
            amount=None,
            currency="RUB",
            product_name="Monthly",
            client_reference_id="ghost",
            metadata={},
            save_payment_method=True,
            success_url="http://testserver/ok",
            cancel_url="http://testserver/cancel",
            expires_at=timezone.now() + timedelta(hours=1),
            locale="en",
            idempotency_key="setup:ghost",
        )
    )
    stripe_sandbox.pay(setup.id, CARD)
    setup_intent = gateway.retrieve_payment_method_setup(
        gateway.retrieve_checkout_session(setup.id).setup_intent_id or ""
    )
    for key, metadata in (("ours", {"payment_id": "6f1c2a9e-5d1b-4c47-9a0e-2b8f6d7c1e55"}), ("foreign", {})):
        gateway.charge_off_session(
            OffSessionCharge(
                customer_id=customer_id,
                payment_method_id=setup_intent.payment_method_id or "",
                amount=1000,
                currency="RUB",
                description=key,
                metadata=metadata,
                idempotency_key=f"ghost-charge:{key}",
            )
        )
    run = reconcile_unbooked_charges(window=window())
    assert [fix["outcome"] for fix in run.fixes] == ["refunded_without_row"]
    assert [r["amount"] for r in refunds_at_stripe(stripe_sandbox)] == [1000]
    # Nothing more on a second sweep: the refund's key is derived from the charge, and a charge
    # given back already is no fix (a run that found one every time would never come out clean).
    again = reconcile_unbooked_charges(window=window())
    assert len(refunds_at_stripe(stripe_sandbox)) == 1
    assert again.fixes == []
    # The day's report lists our charge among the sweep's fixes, and the refund it gave is part of
    # that fix, not a refund missing with us (the full-size soak found it listed as one). The
    # foreign charge is no fix: it stays a charge missing with us, for accounting to look into.
    report = reconciliation_report_for_day(day=timezone.now().date())
    assert [fix["outcome"] for fix in report.fixed] == ["refunded_without_row"]
    assert [(m.kind, m.object_type) for m in report.mismatches] == [("missing_with_us", "payment")]


def test_a_stored_event_stuck_longer_than_the_event_list_window_is_still_handled(
    opened, stripe_sandbox, settings
):
    stripe_sandbox.pay(opened.provider_session_id, CARD)
    event = WebhookEvent.objects.create(
        event_id="evt_stuck_for_days",
        type="checkout.session.completed",
        object_id=opened.provider_session_id,
        provider_created_at=timezone.now() - timedelta(days=10),
        payload={"id": opened.provider_session_id},
    )
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(days=10))
    settings.RECONCILIATION_PENDING_AFTER = timedelta(minutes=15)
    reconcile_events()
    event.refresh_from_db()
    assert event.status == "processed"
    assert Subscription.objects.get(pk=opened.subscription_id).status == SubscriptionStatus.ACTIVE


def test_the_hourly_sweep_looks_at_the_last_lookback_of_the_billing_clock(settings):
    # In the demo the clock is moved days ahead and the sandbox stamps charges with it: a
    # window on real time would never see them.
    settings.UNBOOKED_CHARGES_LOOKBACK = timedelta(hours=26)
    moved_to = clock.advance(timedelta(days=30))

    window = unbooked_charges_window()

    assert window.end - window.start == timedelta(hours=26)
    assert window.end >= moved_to  # days past real time, where the demo's charges are stamped
