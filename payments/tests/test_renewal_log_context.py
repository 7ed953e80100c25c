"""A renewal's log lines, its provider call's among them, name its subscription, payment and key."""

import logging
from datetime import timedelta

import pytest

from config.logging import LogContextFilter
from core import clock
from core.log_context import log_context, log_context_fields
from payments.gateways.memory import MemoryGateway
from payments.models import Payment, PaymentKind
from payments.services.renewals import RenewalOutcome, renewal_run

pytestmark = pytest.mark.django_db


def test_the_provider_call_of_a_renewal_logs_with_its_subscription_payment_and_key(
    paid_subscription, memory_provider, monkeypatch, caplog
):
    subscription = paid_subscription()
    period_start = subscription.current_period_end
    clock.advance(period_start - clock.now() + timedelta(minutes=1))
    charge = MemoryGateway.charge_off_session

    def charge_and_log(gateway, request):
        logging.getLogger("payments.gateways").warning("charging off session")
        return charge(gateway, request)

    monkeypatch.setattr(MemoryGateway, "charge_off_session", charge_and_log)
    caplog.handler.addFilter(LogContextFilter())

    with log_context(request_id="task-1"):
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        # The renewal's fields end with it; the task's id stays.
        assert log_context_fields() == {"request_id": "task-1"}

    (line,) = [record for record in caplog.records if record.getMessage() == "charging off session"]
    renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
    assert (line.request_id, line.subscription_id, line.payment_id, line.idempotency_key) == (
        "task-1",
        str(subscription.pk),
        str(renewal.pk),
        f"renewal:{subscription.pk}:{period_start:%Y%m%dT%H%M%SZ}:0",
    )
