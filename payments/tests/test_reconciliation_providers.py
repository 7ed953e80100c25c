"""Reconciliation and the daily report work one provider at a time, each on its own rows and cursor.

A second provider is registered for these tests in `PAYMENT_PROVIDERS`: an in-memory provider
of its own, next to Stripe's offline sandbox. A run for one provider must never read the other's
listings, touch the other's rows or move the other's cursor or lease.
"""

from datetime import UTC, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.tests.roles import staff_member
from core import clock
from payments import tasks
from payments.gateways import DEFAULT_PROVIDERS
from payments.gateways.base import CustomerRequest
from payments.gateways.memory import MemoryGateway
from payments.models import (
    CheckoutSession,
    Payment,
    PaymentStatus,
    ReconciliationCursor,
    ReconciliationKind,
    ReconciliationRun,
    WebhookEvent,
)
from payments.services import daily_report
from payments.services.daily_report import reconciliation_report_for_day
from payments.services.reconciliation import reconcile_events, reconcile_pending_payments
from payments.tests.factories import PaymentFactory
from tariffs.models import Tariff

pytestmark = pytest.mark.django_db
SECOND = "second"
REPORT_URL = "/admin/payments/payment/reconciliation-report/"
_second_gateway = MemoryGateway(now=clock.now)


def second_gateway() -> MemoryGateway:
    """Build the second provider's gateway (its `PAYMENT_PROVIDERS` entry points here)."""
    return _second_gateway


@pytest.fixture
def two_providers(settings, stripe_sandbox) -> MemoryGateway:
    """Configure Stripe (the sandbox, still the default) and a second, in-memory provider."""
    settings.PAYMENT_PROVIDERS = {
        **DEFAULT_PROVIDERS,
        SECOND: f"{__name__}.second_gateway",
    }
    settings.DEFAULT_PAYMENT_PROVIDER = "stripe"
    _second_gateway.reset()
    return _second_gateway


@pytest.fixture
def paid_at_stripe(viewer_client, stripe_sandbox, two_providers) -> CheckoutSession:
    """Alice's checkout, paid at Stripe; its webhooks never arrive."""
    Tariff.objects.create(slug="monthly", name="Monthly", amount=39900, currency="RUB")
    alice = viewer_client("alice", "alice@example.com")
    body = alice.post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json").json()
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    stripe_sandbox.pay(checkout.provider_session_id, "4242424242424242")
    return checkout


def cursor(kind: str, provider: str) -> ReconciliationCursor | None:
    return ReconciliationCursor.objects.filter(kind=kind, provider=provider).first()


def test_an_events_run_reads_and_moves_only_its_providers_cursor(
    paid_at_stripe, two_providers, stripe_sandbox
):
    two_providers.create_customer(
        CustomerRequest(account_ref="bob", email="bob@example.com", idempotency_key="customer:bob")
    )
    [theirs] = two_providers.state.events

    second = reconcile_events(provider=SECOND)

    assert (second.provider, second.status, second.examined) == (SECOND, "ok", 1)
    assert cursor(ReconciliationKind.EVENTS, SECOND).last_event_id == theirs.id
    assert cursor(ReconciliationKind.EVENTS, "stripe") is None
    assert stripe_sandbox.requests(method="GET", path="/v1/events") == []
    assert Payment.objects.get(pk=paid_at_stripe.payment_id).status == PaymentStatus.PENDING

    first = reconcile_events(provider="stripe")

    assert (first.provider, first.status) == ("stripe", "ok")
    assert (
        cursor(ReconciliationKind.EVENTS, "stripe").last_event_id == stripe_sandbox.objects("event")[-1]["id"]
    )
    assert cursor(ReconciliationKind.EVENTS, SECOND).last_event_id == theirs.id
    assert set(WebhookEvent.objects.values_list("provider", flat=True)) == {"stripe"}
    assert Payment.objects.get(pk=paid_at_stripe.payment_id).status == PaymentStatus.SUCCEEDED


def test_a_pending_payments_run_asks_only_its_provider_about_only_its_rows(paid_at_stripe, stripe_sandbox):
    stripe_sandbox.delete("/requests")

    second = reconcile_pending_payments(older_than=timedelta(0), provider=SECOND)

    assert (second.provider, second.status, second.examined, second.fixed) == (SECOND, "ok", 0, 0)
    assert stripe_sandbox.requests() == []
    assert Payment.objects.get(pk=paid_at_stripe.payment_id).status == PaymentStatus.PENDING

    first = reconcile_pending_payments(older_than=timedelta(0), provider="stripe")

    assert (first.provider, first.examined, first.fixed) == ("stripe", 1, 1)
    assert Payment.objects.get(pk=paid_at_stripe.payment_id).status == PaymentStatus.SUCCEEDED


def test_a_lease_held_for_one_provider_does_not_stop_the_others_run(paid_at_stripe):
    holder = ReconciliationRun.objects.create(kind=ReconciliationKind.PENDING_PAYMENTS, provider="stripe")
    ReconciliationCursor.objects.create(
        kind=ReconciliationKind.PENDING_PAYMENTS,
        provider="stripe",
        locked_by=holder,
        locked_until=clock.now() + timedelta(minutes=5),
    )

    assert reconcile_pending_payments(older_than=timedelta(0), provider="stripe").status == "skipped"
    assert reconcile_pending_payments(older_than=timedelta(0), provider=SECOND).status == "ok"
    assert cursor(ReconciliationKind.PENDING_PAYMENTS, "stripe").locked_by == holder
    assert cursor(ReconciliationKind.PENDING_PAYMENTS, SECOND).locked_by is None


def test_the_beat_tasks_and_the_command_run_every_provider(paid_at_stripe):
    out = StringIO()

    call_command("reconcile", "--only", "pending", "--older-than-minutes", "0", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Stripe, pending payments: ok, examined 1, fixed 1")
    assert lines[1].startswith(f"{SECOND}, pending payments: ok, examined 0, fixed 0")
    assert tasks.reconcile_events() == {"stripe": "ok", SECOND: "ok"}
    events_runs = ReconciliationRun.objects.filter(kind=ReconciliationKind.EVENTS)
    assert sorted(events_runs.values_list("provider", flat=True)) == sorted(["stripe", SECOND])
    assert sorted(
        ReconciliationCursor.objects.filter(kind=ReconciliationKind.EVENTS).values_list("provider", flat=True)
    ) == sorted(["stripe", SECOND])


def test_the_report_compares_one_provider_with_its_own_rows_only(paid_at_stripe, two_providers):
    reconcile_pending_payments(older_than=timedelta(0))
    day = clock.now().astimezone(UTC).date()
    ours_at_second = PaymentFactory(
        provider=SECOND, paid_at=clock.now(), provider_payment_id="pay_2", provider_charge_id="ch_2"
    )

    at_stripe = reconciliation_report_for_day(day=day)
    at_second = reconciliation_report_for_day(day=day, provider=SECOND)

    assert (at_stripe.provider, at_stripe.mismatches) == ("stripe", [])
    assert [(t.our_payments, t.provider_charges) for t in at_stripe.totals] == [(1, 1)]
    [missing] = at_second.mismatches
    assert (missing.kind, missing.our_id, missing.their_id) == (
        daily_report.MISSING_AT_PROVIDER,
        str(ours_at_second.pk),
        "ch_2",
    )
    assert missing.label == f"missing at {SECOND}"
    assert [(t.our_payments, t.provider_charges) for t in at_second.totals] == [(1, 0)]


def test_the_report_page_offers_the_providers_and_shows_the_one_chosen(paid_at_stripe, client):
    reconcile_pending_payments(older_than=timedelta(0))
    PaymentFactory(provider=SECOND, paid_at=clock.now(), provider_charge_id="ch_2")
    client.force_login(staff_member("Accounting"))
    day = clock.now().astimezone(UTC).date().isoformat()

    default = client.get(REPORT_URL, {"day": day}).content.decode()
    second = client.get(REPORT_URL, {"day": day, "provider": SECOND}).content.decode()
    unknown = client.get(REPORT_URL, {"day": day, "provider": "nobody"}).content.decode()

    assert '<select name="provider"' in default
    assert '<option value="stripe" selected>Stripe</option>' in default
    assert 'class="report-clean"' in default
    assert f'<option value="{SECOND}" selected>' in second
    assert f"missing at {SECOND}" in second
    assert "Choose one of the payment providers listed." in unknown
