"""Rows are stamped by the billing clock: once the demo moves it, what is created then says so.

And what is compared with those stamps (a checkout page's life) is measured on the same clock.
"""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.tests.factories import BillingAccountFactory
from billing.tests.factories import SubscriptionFactory
from core import clock
from core.days import utc_yesterday
from payments.models import Payment, PaymentKind, ReconciliationKind, ReconciliationRun, Refund, WebhookEvent
from payments.tests.factories import PaymentFactory
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

A_MONTH_AND_MORE = timedelta(days=40)
SUBSCRIBE = "/api/v1/subscriptions/"


def stamped_between(moment: datetime, start: datetime) -> bool:
    return start <= moment <= clock.now()


def test_rows_created_after_the_clock_moved_are_stamped_with_the_billing_time():
    moved_to = clock.advance(A_MONTH_AND_MORE)

    account = BillingAccountFactory()
    tariff = TariffFactory()
    subscription = SubscriptionFactory(account=account, tariff=tariff, billing_anchor=moved_to)
    payment = PaymentFactory(subscription=subscription)
    refund = Refund.objects.create(payment=payment, amount=100, currency=payment.currency)
    event = WebhookEvent.objects.create(
        event_id="evt_moved", type="charge.succeeded", provider_created_at=moved_to, payload={}
    )
    run = ReconciliationRun.objects.create(kind=ReconciliationKind.EVENTS)

    stamps = {
        "account": (account.created_at, account.updated_at),
        "tariff": (tariff.created_at, tariff.updated_at),
        "subscription": (subscription.created_at, subscription.updated_at),
        "payment": (payment.created_at, payment.updated_at),
        "refund": (refund.created_at, refund.updated_at),
        "provider event": (event.received_at,),
        "reconciliation run": (run.started_at,),
    }
    late = {
        row: times for row, times in stamps.items() if not all(stamped_between(t, moved_to) for t in times)
    }
    assert late == {}


def test_saving_again_moves_updated_at_with_the_billing_clock_and_keeps_created_at():
    payment = PaymentFactory()
    created = payment.created_at

    later = clock.advance(timedelta(days=3))
    payment.failure_code = "card_declined"
    payment.save()
    payment.refresh_from_db()

    assert payment.created_at == created
    assert stamped_between(payment.updated_at, later)


def test_an_explicit_creation_time_is_kept():
    clock.advance(A_MONTH_AND_MORE)
    back_then = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    payment = PaymentFactory(created_at=back_then)
    payment.save()
    payment.refresh_from_db()

    assert payment.created_at == back_then


def test_bulk_created_rows_are_stamped_too_unless_given_their_time():
    moved_to = clock.advance(A_MONTH_AND_MORE)
    back_then = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    template = PaymentFactory()

    Payment.objects.bulk_create(
        [
            Payment(
                subscription=template.subscription,
                kind=PaymentKind.RENEWAL,
                amount=100,
                currency="RUB",
                idempotency_key=f"bulk-{n}",
                created_at=created_at,
            )
            for n, created_at in enumerate([None, back_then])
        ]
    )

    stamped, given = (Payment.objects.get(idempotency_key=f"bulk-{n}") for n in range(2))
    assert stamped_between(stamped.created_at, moved_to)
    assert stamped_between(stamped.updated_at, moved_to)
    assert given.created_at == back_then


def test_yesterday_is_the_day_before_the_billing_clock_today():
    clock.advance(timedelta(days=3))

    assert utc_yesterday() == (clock.now() - timedelta(days=1)).astimezone(UTC).date()


def test_a_viewer_back_after_the_clock_moved_gets_the_same_page_until_it_expires(
    viewer_client, memory_provider, settings
):
    TariffFactory(slug="monthly")
    clock.advance(A_MONTH_AND_MORE)
    client = viewer_client("alice")

    first = client.post(SUBSCRIBE, {"tariff": "monthly"}, format="json")
    again = client.post(SUBSCRIBE, {"tariff": "monthly"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["checkout"]["id"] == first.json()["checkout"]["id"]

    clock.advance(settings.CHECKOUT_SESSION_TTL)
    later = client.post(SUBSCRIBE, {"tariff": "monthly"}, format="json")
    assert later.status_code == 201
    assert later.json()["checkout"]["id"] != first.json()["checkout"]["id"]
