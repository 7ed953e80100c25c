"""The same news of a payment arriving many times at once is posted once (real threads, PostgreSQL)."""

import json

import pytest
from rest_framework.test import APIClient

from ledger.models import EntryKind, JournalEntry, RecognitionPlan
from payments.tests.concurrency import run_concurrently
from payments.tests.stripe_signing import sign
from payments.tests.test_webhook_concurrency import SECRET, completed_event, eager_tasks, paid_checkout

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["eager_tasks", "paid_checkout"]  # fixtures shared with the payments' race tests


def deliver(body: bytes) -> int:
    response = APIClient().post(
        "/api/v1/webhooks/stripe/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, SECRET),
    )
    return response.status_code


def test_one_webhook_delivered_twenty_times_at_once_posts_the_payment_once(
    stripe_sandbox, paid_checkout, eager_tasks
):
    body = completed_event(stripe_sandbox, paid_checkout)

    assert run_concurrently(lambda _: deliver(body), 20) == [200] * 20

    payment = paid_checkout.payment
    [entry] = JournalEntry.objects.filter(payment=payment)
    assert (entry.kind, entry.source) == (EntryKind.PAYMENT_CAPTURED, f"payment:{payment.pk}")
    assert RecognitionPlan.objects.get(payment=payment).deferred == 39900


def test_twenty_events_of_one_payment_under_other_ids_at_once_post_it_once(
    stripe_sandbox, paid_checkout, eager_tasks
):
    event = json.loads(completed_event(stripe_sandbox, paid_checkout))
    bodies = [json.dumps({**event, "id": f"{event['id']}_{n}"}).encode() for n in range(20)]

    assert run_concurrently(lambda n: deliver(bodies[n]), 20) == [200] * 20

    assert JournalEntry.objects.filter(payment=paid_checkout.payment).count() == 1
