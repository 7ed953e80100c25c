"""A second charge for a change payment another charge already paid is refunded by the sweep, once."""

import pytest

from billing.tests.plan_change_setup import frozen_clock, in_known_period, premium_tariff  # noqa: F401
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.services.reconciliation import reconcile_unbooked_charges
from payments.tests.test_self_service_attacks import (
    EVERY_CHARGE,
    PREMIUM_DUE,
    TEN_DAYS_IN,
    change_charges_taken,
    lose_the_answers,
    upgrade,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_provider")]


def test_a_second_charge_for_a_paid_change_payment_is_refunded_by_the_sweep(
    paid_subscription,
    frozen_clock,  # noqa: F811 (the fixture imported above)
    premium_tariff,  # noqa: F811
    viewer_client,
    memory_provider,
    monkeypatch,
):
    subscription = paid_subscription(user_id="alice")
    frozen_clock(TEN_DAYS_IN)
    in_known_period(subscription)
    client = viewer_client("alice")
    back = lose_the_answers(monkeypatch)
    assert upgrade(client, subscription).status_code == 503
    back()
    # A row given up while its charge's answer was lost (as a late expiry of its page did before
    # the page stopped cancelling change payments): the retry charges again under the next key.
    Payment.objects.filter(kind=PaymentKind.CHANGE).update(status=PaymentStatus.CANCELED)
    assert upgrade(client, subscription).json()["status"] == "applied"
    assert change_charges_taken(memory_provider) == [PREMIUM_DUE, PREMIUM_DUE]

    run = reconcile_unbooked_charges(window=EVERY_CHARGE)

    assert [fix["outcome"] for fix in run.fixes] == ["refunded_second_charge"]
    assert [refund.amount for refund in memory_provider.refunds()] == [PREMIUM_DUE]
    again = reconcile_unbooked_charges(window=EVERY_CHARGE)
    assert again.fixes == []
    assert len(memory_provider.refunds()) == 1
