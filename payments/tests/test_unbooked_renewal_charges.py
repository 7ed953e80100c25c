"""A renewal's charge is booked by its renewal: the sweep of charges never refunds it under it.

A renewal charges the saved card inside the transaction that writes its payment. Until that
commits, or after a worker killed mid-charge rolled it back and before its task runs again, the
charge names a payment we do not have. The hourly sweep of unbooked charges used to refund such
a charge as "rowless"; the renewal then booked it as paid (the provider answers its key with
that same, refunded charge): the viewer got the month for nothing and the books said paid
(found by bench/soak). Now the sweep leaves it to the renewal while the renewal may still book it.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from billing.services import subscription_cancel_now
from core import clock
from payments.gateways.base import CreatedRange
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.services.reconciliation import reconcile_unbooked_charges
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.sandbox_helpers import wait_until

CHARGES = "/v1/payment_intents"


class _KilledMidCharge(Exception):
    """What ends a worker between the provider's answer and the commit."""


def window() -> CreatedRange:
    now = timezone.now()
    return CreatedRange(start=now - timedelta(hours=1), end=now + timedelta(minutes=1))


def make_due(subscription) -> None:
    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))


def renew_and_lose_the_transaction(subscription) -> None:
    """Charge the card as the renewal does, then lose everything it wrote, as a killed worker does."""
    with pytest.raises(_KilledMidCharge), transaction.atomic():
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        raise _KilledMidCharge


def renewal_charges(sandbox) -> list[dict]:
    return [pi for pi in sandbox.objects("payment_intent") if pi["metadata"].get("kind") == "renewal"]


@pytest.mark.django_db
def test_a_charge_whose_renewal_rolled_back_is_left_to_the_renewal_which_books_it(
    paid_subscription, stripe_sandbox
):
    subscription = paid_subscription()
    make_due(subscription)
    renew_and_lose_the_transaction(subscription)
    assert not Payment.objects.filter(kind=PaymentKind.RENEWAL).exists()
    assert len(renewal_charges(stripe_sandbox)) == 1

    swept = reconcile_unbooked_charges(window=window())
    renewed = renewal_run(subscription_id=subscription.pk)

    assert (swept.status, swept.fixed) == ("ok", 0)
    assert renewed == RenewalOutcome.RENEWED
    payment = Payment.objects.get(kind=PaymentKind.RENEWAL)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.SUCCEEDED, 0)
    assert len(renewal_charges(stripe_sandbox)) == 1  # the renewal's key was answered with its charge
    assert stripe_sandbox.objects("refund") == []
    assert reconcile_unbooked_charges(window=window()).fixed == 0


@pytest.mark.django_db
def test_a_charge_whose_subscription_ended_before_its_renewal_ran_again_is_refunded(
    paid_subscription, stripe_sandbox
):
    subscription = paid_subscription()
    make_due(subscription)
    renew_and_lose_the_transaction(subscription)
    subscription_cancel_now(subscription=subscription, at=clock.now())

    swept = reconcile_unbooked_charges(window=window())

    assert [fix["outcome"] for fix in swept.fixes] == ["refunded_without_row"]
    assert [refund["amount"] for refund in stripe_sandbox.objects("refund")] == [subscription.amount]
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.NOT_DUE


@pytest.mark.django_db(transaction=True)
def test_the_sweep_waits_for_a_renewal_in_flight_and_leaves_its_charge_to_it(
    paid_subscription, stripe_sandbox, settings
):
    subscription = paid_subscription()
    make_due(subscription)
    # The provider takes the charge, then its answer is lost: the renewal waits out its time-out
    # and asks again with the same key, its transaction open all along, its payment not committed.
    settings.STRIPE_MAX_RETRIES = 1
    stripe_sandbox.post(
        "/faults",
        {
            "mode": "timeout",
            "when": "after",
            "path": CHARGES,
            "method": "POST",
            "count": 1,
            "hold_seconds": 3,
        },
    )
    outcomes: list[RenewalOutcome] = []

    def renew() -> None:
        try:
            outcomes.append(renewal_run(subscription_id=subscription.pk))
        finally:
            connections.close_all()

    renewal = threading.Thread(target=renew)
    renewal.start()
    try:
        wait_until(lambda: renewal_charges(stripe_sandbox), timeout=30)
        assert renewal.is_alive(), "the renewal finished before the sweep could meet it in flight"
        swept = reconcile_unbooked_charges(window=window())
    finally:
        renewal.join(timeout=60)

    assert outcomes == [RenewalOutcome.RENEWED]
    assert (swept.status, swept.fixed) == ("ok", 0)
    assert stripe_sandbox.objects("refund") == []
    payment = Payment.objects.get(kind=PaymentKind.RENEWAL)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.SUCCEEDED, 0)
