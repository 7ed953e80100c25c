"""A YooKassa renewal in a real Celery worker process that is killed mid-charge charges once."""

from datetime import timedelta
from typing import Any

import pytest

from billing.models import Subscription
from billing.tasks import renew_subscription
from billing.tests.workers import Worker
from config.celery import app as celery_app
from core import clock
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.tests.sandbox_helpers import wait_until
from payments.tests.yookassa_helpers import YooKassaProcess
from payments.tests.yookassa_wiring import (
    VIEWER_EMAIL,
    pay_and_settle,
    posts,
    subscribe,
    yookassa_tariff,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
CHARGES = "/v3/payments"


@pytest.fixture
def workers(yookassa: YooKassaProcess, monkeypatch: pytest.MonkeyPatch, settings: Any):
    """Start two worker processes with YooKassa configured on the test's sandbox; stop them afterwards."""
    # The workers build their settings from the environment: YooKassa is a provider there when
    # its shop is set (config/settings/base.py).
    monkeypatch.setenv("YOOKASSA_SHOP_ID", settings.YOOKASSA_SHOP_ID)
    monkeypatch.setenv("YOOKASSA_API_BASE", yookassa.api_base)
    celery_app.control.purge()
    started = [
        Worker(f"yookassa-renewals-{n}", settings.STRIPE_API_BASE or "http://127.0.0.1:9") for n in (1, 2)
    ]
    try:
        for worker in started:
            worker.wait_until("ready.")
        yield started
    finally:
        for worker in started:
            worker.stop()
        celery_app.control.purge()


def renewal_charges(sandbox: YooKassaProcess) -> list[dict[str, Any]]:
    """Return the payments YooKassa made for renewals (not the first page's)."""
    status, listing = sandbox.api("GET", "/payments?limit=100")
    assert status == 200, listing
    return [p for p in listing["items"] if p.get("metadata", {}).get("kind") == PaymentKind.RENEWAL]


def test_worker_killed_mid_yookassa_charge_and_task_redelivered_charges_once(
    viewer_client, yookassa, workers
):
    body = subscribe(viewer_client("alice", VIEWER_EMAIL), yookassa_tariff())
    pay_and_settle(yookassa, body["checkout"]["id"])
    subscription = Subscription.objects.get()
    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
    yookassa.control("DELETE", "/requests")
    # The charge reaches the sandbox and hangs there long enough to kill the worker mid-call.
    yookassa.fault(mode="latency", latency_ms=3000, path=CHARGES, method="POST", count=1)

    renew_subscription.delay(str(subscription.pk))
    wait_until(lambda: posts(yookassa, CHARGES), timeout=30)
    busy = next(
        w for w in workers if any("renew_subscription" in line and "received" in line for line in w.output)
    )
    busy.kill_task_process()

    wait_until(
        lambda: Payment.objects.filter(kind=PaymentKind.RENEWAL, status=PaymentStatus.SUCCEEDED).exists(),
        timeout=60,
    )
    keys = [r["idempotency_key"] for r in posts(yookassa, CHARGES)]
    assert len(keys) == 2, "the redelivered task did not charge again, or charged more than twice"
    assert len(set(keys)) == 1, "the redelivered task used another Idempotence-Key"
    wait_until(lambda: all(r.get("status") for r in posts(yookassa, CHARGES)), timeout=10)
    assert len(renewal_charges(yookassa)) == 1
    subscription.refresh_from_db()
    assert subscription.current_period_end > clock.now()
