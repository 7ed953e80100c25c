"""With the broker down at commit time, the event is still delivered, once, when it is back."""

import json
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from billing.tests.factories import SubscriptionFactory
from billing.tests.workers import ROOT, Worker
from config.celery import app as celery_app
from notifications.models import DeliveryStatus, EventDelivery
from notifications.tasks import dispatch_events
from notifications.tests.receiver import free_port
from payments.tests.sandbox_helpers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Another process, whose broker is a closed port: the viewer cancels, the change commits.
CANCEL = """
import sys
import django
django.setup()
from core import clock
from billing.models import Subscription
from billing.services import subscription_cancel
subscription_cancel(subscription=Subscription.objects.get(pk=sys.argv[1]), at=clock.now())
print("committed")
"""


def run_with_broker_down(subscription_id: str) -> subprocess.CompletedProcess[str]:
    db = connection.settings_dict
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "BILLING_CLOCK_FILE": settings.BILLING_CLOCK_FILE,
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", CANCEL, subscription_id],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_event_committed_with_the_broker_down_is_delivered_once_when_it_is_back(endpoint, receiver):
    subscription = SubscriptionFactory()

    done = run_with_broker_down(str(subscription.pk))

    assert (done.returncode, done.stdout.strip()) == (0, "committed"), done.stderr
    assert "could not queue notifications.tasks.dispatch_events now" in done.stderr
    delivery = EventDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert receiver.received == []

    # The broker is back: beat's next runs of the dispatcher reach a real worker.
    celery_app.control.purge()
    worker = Worker("events", stripe_api_base="")
    try:
        worker.wait_until("ready.")
        for _ in range(3):
            dispatch_events.delay()
        wait_until(
            lambda: sum("dispatch_events" in line and "succeeded" in line for line in worker.output) >= 3,
            timeout=30,
        )
    finally:
        worker.stop()
        celery_app.control.purge()

    assert [json.loads(r.body)["type"] for r in receiver.received] == ["subscription.canceled"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)
