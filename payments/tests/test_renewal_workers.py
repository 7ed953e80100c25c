"""Renewals in real Celery worker processes: overlapping jobs and a killed worker charge once."""

from datetime import timedelta

import pytest

from billing.models import Subscription
from billing.tasks import enqueue_due_renewals, renew_subscription
from billing.tests.workers import Worker
from config.celery import app as celery_app
from core import clock
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.tests.sandbox_helpers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
CHARGES = "/v1/payment_intents"


@pytest.fixture
def workers(stripe_sandbox, settings):
    """Start two worker processes on a purged queue; stop them afterwards."""
    celery_app.control.purge()
    api_base = settings.STRIPE_API_BASE
    started = [Worker(f"renewals-{n}", api_base) for n in (1, 2)]
    try:
        for worker in started:
            worker.wait_until("ready.")
        yield started
    finally:
        for worker in started:
            worker.stop()
        celery_app.control.purge()


def renewal_intents(sandbox) -> list[dict]:
    """Return the PaymentIntents the sandbox created for renewals (not the first checkouts)."""
    return [pi for pi in sandbox.objects("payment_intent") if pi["metadata"].get("kind") == "renewal"]


def renewed_payments() -> int:
    return Payment.objects.filter(kind=PaymentKind.RENEWAL, status=PaymentStatus.SUCCEEDED).count()


def test_two_renewal_jobs_at_once_charge_every_due_subscription_exactly_once(
    paid_subscription, stripe_sandbox, workers
):
    subscriptions = [paid_subscription(user_id=f"viewer-{n}") for n in range(12)]
    clock.advance(max(s.current_period_end for s in subscriptions) - clock.now() + timedelta(minutes=1))
    stripe_sandbox.delete("/requests")

    # Two jobs over the same due set, each picked up by its own worker process.
    enqueue_due_renewals.delay()
    enqueue_due_renewals.delay()
    wait_until(lambda: renewed_payments() == len(subscriptions), timeout=60)

    charges = [r for r in stripe_sandbox.requests(method="POST", path=CHARGES) if r["status"] == 200]
    assert len(renewal_intents(stripe_sandbox)) == len(subscriptions)
    assert len({c["idempotency_key"] for c in charges}) == len(subscriptions)
    assert all(s.current_period_end > clock.now() for s in Subscription.objects.all())
    both_worked = [w for w in workers if any("renew_subscription" in line for line in w.output)]
    assert len(both_worked) == 2


def test_worker_killed_mid_charge_and_task_redelivered_charges_once(
    paid_subscription, stripe_sandbox, workers
):
    subscription = paid_subscription()
    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
    stripe_sandbox.delete("/requests")
    # The charge reaches the sandbox and hangs there long enough to kill the worker mid-call.
    stripe_sandbox.post(
        "/faults", {"mode": "latency", "latency_ms": 3000, "path": CHARGES, "method": "POST", "count": 1}
    )

    renew_subscription.delay(str(subscription.pk))
    wait_until(lambda: stripe_sandbox.requests(method="POST", path=CHARGES), timeout=30)
    busy = next(
        w for w in workers if any("renew_subscription" in line and "received" in line for line in w.output)
    )
    busy.kill_task_process()

    wait_until(renewed_payments, timeout=60)
    keys = [r["idempotency_key"] for r in stripe_sandbox.requests(method="POST", path=CHARGES)]
    assert len(keys) == 2, "the redelivered task charged again"
    assert len(set(keys)) == 1, "the redelivered task used another idempotency key"
    wait_until(
        lambda: all(r.get("status") for r in stripe_sandbox.requests(method="POST", path=CHARGES)), timeout=10
    )
    assert len(renewal_intents(stripe_sandbox)) == 1
    subscription.refresh_from_db()
    assert subscription.current_period_start is not None and subscription.current_period_end > clock.now()
