"""A renewal charge Stripe took for a subscription that ended meanwhile is refunded, not lost."""

from datetime import timedelta

import pytest

from billing.models import Subscription, SubscriptionStatus
from billing.services import subscription_expire
from core import clock
from payments.gateways import get_gateway
from payments.gateways.base import OffSessionCharge
from payments.models import PaymentStatus, ProviderCustomer, Refund
from payments.services.renewals import RenewalOutcome, _due_period, _renewal_payment, renewal_apply_intent

# The provider only sets the scene: the in-memory one (billing/tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_provider")]


def test_a_renewal_charge_for_a_subscription_that_ended_meanwhile_is_refunded(paid_subscription):
    subscription = paid_subscription()
    clock.advance(timedelta(days=32))
    due = _due_period(subscription, clock.now())
    assert due is not None
    payment = _renewal_payment(subscription, due)
    saved = ProviderCustomer.objects.get(account=subscription.account, provider=payment.provider)
    intent = get_gateway(payment.provider).charge_off_session(
        OffSessionCharge(
            customer_id=saved.customer_ref,
            payment_method_id=saved.payment_method_ref,
            amount=payment.amount,
            currency=payment.currency,
            description="renewal",
            metadata={"payment_id": str(payment.pk)},
            idempotency_key=f"test-renewal:{payment.pk}",
        )
    )
    subscription_expire(subscription=subscription, at=clock.now())
    assert renewal_apply_intent(payment=payment, intent=intent) == RenewalOutcome.REFUNDED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Refund.objects.get(payment=payment).amount == payment.amount
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.EXPIRED
