"""Reconciliation settles what lost webhooks left pending, by asking Stripe, and says what it fixed."""

import dataclasses
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from billing.models import SubscriptionStatus
from billing.selectors import access_for_user
from core import clock
from payments import tasks
from payments.gateways import get_gateway
from payments.gateways.base import RefundRequest
from payments.gateways.errors import GatewayError
from payments.gateways.stripe import StripeGateway
from payments.models import (
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReconciliationCursor,
    ReconciliationKind,
    ReconciliationRun,
    ReconciliationRunStatus,
    WebhookEvent,
    WebhookEventSource,
    WebhookEventStatus,
)
from payments.services.checkout import checkout_sync
from payments.services.reconciliation import events as missed_events
from payments.services.reconciliation import reconcile_events, reconcile_pending_payments
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.concurrency import run_concurrently
from tariffs.models import Tariff

pytestmark = pytest.mark.django_db
NOW = timedelta(0)
CARD = "4242424242424242"


def subscribe(client) -> CheckoutSession:
    """Subscribe a viewer to the monthly tariff through the API; return the checkout it opened."""
    Tariff.objects.get_or_create(
        slug="monthly", defaults={"name": "Monthly", "amount": 39900, "currency": "RUB"}
    )
    body = client.post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json").json()
    return CheckoutSession.objects.select_related("payment", "subscription").get(pk=body["checkout"]["id"])


@pytest.fixture
def alice(viewer_client, stripe_sandbox):
    """The viewer "alice" and her API client; the sandbox sends no webhooks (none configured)."""
    return viewer_client("alice", "alice@example.com")


@pytest.fixture
def paid(alice, stripe_sandbox) -> CheckoutSession:
    """Alice's checkout, paid at Stripe; its webhooks never arrive."""
    checkout = subscribe(alice)
    stripe_sandbox.pay(checkout.provider_session_id, CARD)
    return checkout


def has_access(client) -> bool:
    return client.get("/api/v1/access/").json()["has_access"]


def sandbox_calls(sandbox, method: str, path_prefix: str) -> int:
    return len(sandbox.requests(method=method, path_prefix=path_prefix))


class TestPendingPayments:
    def test_paid_checkout_whose_webhook_never_arrives_is_settled_in_one_run(self, paid, alice):
        assert has_access(alice) is False

        run = reconcile_pending_payments(older_than=NOW)

        payment = Payment.objects.get(pk=paid.payment_id)
        assert (payment.status, payment.card_last4) == (PaymentStatus.SUCCEEDED, "4242")
        assert payment.provider_payment_id.startswith("pi_")
        paid.subscription.refresh_from_db()
        assert paid.subscription.status == SubscriptionStatus.ACTIVE
        assert has_access(alice) is True
        assert (run.kind, run.status, run.examined, run.fixed, run.error) == (
            ReconciliationKind.PENDING_PAYMENTS,
            ReconciliationRunStatus.OK,
            1,
            1,
            "",
        )
        [fix] = run.fixes
        assert (fix["payment"], fix["checkout"], fix["subscription"]) == (
            str(payment.pk),
            str(paid.pk),
            str(paid.subscription_id),
        )
        assert fix["changes"]["payment"] == ["pending", "succeeded"]
        assert fix["changes"]["checkout"] == ["open", "complete"]
        assert fix["changes"]["subscription"] == ["pending", "active"]
        assert fix["changes"]["paid_until"] == [None, paid.subscription.current_period_end.isoformat()]
        assert run.finished_at is not None

    def test_a_second_run_asks_stripe_nothing_and_changes_nothing(self, paid, stripe_sandbox):
        reconcile_pending_payments(older_than=NOW)
        payment = Payment.objects.get(pk=paid.payment_id)
        stripe_sandbox.delete("/requests")

        again = reconcile_pending_payments(older_than=NOW)

        assert (again.status, again.examined, again.fixed, again.fixes) == ("ok", 0, 0, [])
        assert stripe_sandbox.requests() == []
        assert Payment.objects.get(pk=payment.pk).paid_at == payment.paid_at

    def test_payments_pending_for_less_than_the_setting_are_left_to_their_webhooks(
        self, paid, alice, stripe_sandbox
    ):
        run = reconcile_pending_payments(older_than=timedelta(minutes=15))

        assert (run.status, run.examined, run.fixed) == ("ok", 0, 0)
        assert sandbox_calls(stripe_sandbox, "GET", "/v1/checkout/sessions") == 0
        assert Payment.objects.get(pk=paid.payment_id).status == PaymentStatus.PENDING
        assert has_access(alice) is False

    def test_unpaid_checkout_expired_at_stripe_is_canceled(self, alice, stripe_sandbox):
        checkout = subscribe(alice)
        stripe_sandbox.post("/clock/advance", {"seconds": 2 * 3600})

        run = reconcile_pending_payments(older_than=NOW)

        checkout.refresh_from_db()
        assert checkout.status == CheckoutStatus.EXPIRED
        assert Payment.objects.get(pk=checkout.payment_id).status == PaymentStatus.CANCELED
        assert checkout.subscription.status == SubscriptionStatus.CANCELED
        assert has_access(alice) is False
        assert run.fixed == 1
        assert run.fixes[0]["changes"]["payment"] == ["pending", "canceled"]
        assert run.fixes[0]["changes"]["subscription"] == ["pending", "canceled"]

    def test_a_checkout_past_its_expiry_is_examined_however_young_its_payment(self, alice, stripe_sandbox):
        checkout = subscribe(alice)
        stripe_sandbox.post("/clock/advance", {"seconds": 2 * 3600})
        CheckoutSession.objects.filter(pk=checkout.pk).update(expires_at=clock.now() - timedelta(minutes=1))

        run = reconcile_pending_payments(older_than=timedelta(minutes=15))

        assert (run.examined, run.fixed) == (1, 1)
        assert CheckoutSession.objects.get(pk=checkout.pk).status == CheckoutStatus.EXPIRED

    def test_a_checkout_whose_page_never_opened_is_closed_after_its_expiry(self, alice, stripe_sandbox):
        stripe_sandbox.post("/faults", {"mode": "error", "status": 503, "path": "/v1/checkout/sessions"})
        Tariff.objects.create(slug="monthly", name="Monthly", amount=39900, currency="RUB")
        answer = alice.post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json")
        assert answer.status_code == 503
        stripe_sandbox.delete("/faults")
        checkout = CheckoutSession.objects.get(provider_session_id=None)
        CheckoutSession.objects.filter(pk=checkout.pk).update(expires_at=clock.now() - timedelta(minutes=1))
        stripe_sandbox.delete("/requests")

        run = reconcile_pending_payments(older_than=NOW)

        checkout.refresh_from_db()
        assert checkout.status == CheckoutStatus.EXPIRED
        assert Payment.objects.get(pk=checkout.payment_id).status == PaymentStatus.CANCELED
        assert checkout.subscription.status == SubscriptionStatus.CANCELED
        assert (run.status, run.fixed) == ("ok", 1)
        # Nothing to ask Stripe: it never opened a page for this checkout.
        assert stripe_sandbox.requests() == []

    def test_trial_whose_card_was_saved_without_a_webhook_starts(self, alice, stripe_sandbox):
        Tariff.objects.create(slug="yearly", name="Yearly", amount=399000, currency="RUB", trial_days=7)
        body = alice.post("/api/v1/subscriptions/", {"tariff": "yearly"}, format="json").json()
        checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
        stripe_sandbox.pay(checkout.provider_session_id, CARD)

        run = reconcile_pending_payments(older_than=NOW)

        checkout.refresh_from_db()
        assert checkout.subscription.status == SubscriptionStatus.TRIALING
        assert has_access(alice) is True
        [fix] = run.fixes
        assert (fix["payment"], fix["checkout"]) == (None, str(checkout.pk))
        assert fix["changes"]["subscription"] == ["pending", "trialing"]

    def test_a_stripe_outage_fails_the_run_and_the_next_run_settles(self, paid, alice, stripe_sandbox):
        stripe_sandbox.post(
            "/faults", {"mode": "error", "status": 503, "path": "/v1/checkout/sessions", "method": "GET"}
        )

        failed = reconcile_pending_payments(older_than=NOW)

        assert (failed.status, failed.examined, failed.fixed) == ("failed", 1, 0)
        assert f"checkout {paid.pk}" in failed.error
        assert "TemporaryGatewayError" in failed.error
        assert has_access(alice) is False

        stripe_sandbox.delete("/faults")
        healed = reconcile_pending_payments(older_than=NOW)

        assert (healed.status, healed.fixed) == ("ok", 1)
        assert has_access(alice) is True

    def test_renewal_stripe_left_processing_is_settled_once_it_succeeded(
        self, paid, stripe_sandbox, monkeypatch
    ):
        """Stripe answered the off-session charge "processing"; its success webhook was lost."""
        checkout_sync(provider_session_id=paid.provider_session_id)
        subscription = paid.subscription
        subscription.refresh_from_db()
        first_period_end = subscription.current_period_end
        clock.advance(first_period_end - clock.now() + timedelta(hours=1))
        real_charge = StripeGateway.charge_off_session

        def answered_processing(gateway, charge):
            return dataclasses.replace(real_charge(gateway, charge), status="processing")

        monkeypatch.setattr(StripeGateway, "charge_off_session", answered_processing)
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.PROCESSING
        monkeypatch.undo()
        renewal = Payment.objects.get(kind=PaymentKind.RENEWAL)
        assert renewal.status == PaymentStatus.PENDING
        assert renewal.provider_payment_id.startswith("pi_")

        run = reconcile_pending_payments(older_than=NOW)

        renewal.refresh_from_db()
        subscription.refresh_from_db()
        assert renewal.status == PaymentStatus.SUCCEEDED
        assert (subscription.status, subscription.current_period_end) == (
            SubscriptionStatus.ACTIVE,
            renewal.period_end,
        )
        assert renewal.period_end > first_period_end
        # Still watching after the old period and its grace are long over.
        later = clock.now() + timedelta(days=10)
        assert access_for_user(user_id="alice", now=later).access.has_access is True
        assert (run.examined, run.fixed) == (1, 1)
        assert run.fixes[0]["payment"] == str(renewal.pk)
        assert run.fixes[0]["changes"]["payment"] == ["pending", "succeeded"]
        # One charge at Stripe for the renewal: reconciliation only read it.
        renewals = [
            i for i in stripe_sandbox.objects("payment_intent") if i["metadata"].get("kind") == "renewal"
        ]
        assert len(renewals) == 1

        again = reconcile_pending_payments(older_than=NOW)
        assert (again.examined, again.fixed) == (0, 0)

    def test_renewal_charged_at_stripe_whose_answer_was_lost_ends_paid(self, paid, alice, stripe_sandbox):
        checkout_sync(provider_session_id=paid.provider_session_id)
        subscription = paid.subscription
        subscription.refresh_from_db()
        clock.advance(subscription.current_period_end - clock.now() + timedelta(hours=1))
        stripe_sandbox.post(
            "/faults",
            {"mode": "timeout", "when": "after", "path": "/v1/payment_intents", "method": "POST", "count": 1},
        )
        with pytest.raises(GatewayError):
            renewal_run(subscription_id=subscription.pk)
        # The renewal task's retry rebuilds the same request: Stripe replays the first charge.
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED
        renewal_intents = [
            pi for pi in stripe_sandbox.objects("payment_intent") if pi["metadata"].get("kind") == "renewal"
        ]
        assert len(renewal_intents) == 1
        # Reconciliation afterwards finds nothing left to fix.
        reconcile_pending_payments(older_than=NOW)
        reconcile_events()

        renewal = Payment.objects.get(kind=PaymentKind.RENEWAL)
        assert renewal.status == PaymentStatus.SUCCEEDED
        subscription.refresh_from_db()
        assert subscription.current_period_end == renewal.period_end


class TestMissedEvents:
    def test_paid_checkout_whose_webhook_never_arrives_is_settled_from_the_event_list(
        self, paid, alice, stripe_sandbox
    ):
        run = reconcile_events()

        assert (run.kind, run.status, run.error) == (ReconciliationKind.EVENTS, "ok", "")
        assert Payment.objects.get(pk=paid.payment_id).status == PaymentStatus.SUCCEEDED
        assert has_access(alice) is True
        stored = WebhookEvent.objects.all()
        assert {e.type for e in stored} >= {"checkout.session.completed", "payment_intent.succeeded"}
        assert {e.source for e in stored} == {WebhookEventSource.RECONCILIATION}
        assert {e.status for e in stored} <= {WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED}
        assert run.examined == len(stripe_sandbox.objects("event"))
        assert run.fixed == stored.count()
        assert {fix["event"] for fix in run.fixes} == {e.event_id for e in stored}
        newest = stripe_sandbox.objects("event")[-1]
        cursor = ReconciliationCursor.objects.get(kind=ReconciliationKind.EVENTS)
        assert cursor.last_event_id == newest["id"]
        assert cursor.locked_by is None

    def test_first_run_reads_back_the_lookback_and_later_runs_go_on_from_the_cursor(
        self, paid, stripe_sandbox, settings
    ):
        settings.RECONCILIATION_EVENTS_LOOKBACK = timedelta(hours=72)
        reconcile_events()
        first_cursor = ReconciliationCursor.objects.get(kind=ReconciliationKind.EVENTS)
        stripe_sandbox.delete("/requests")

        again = reconcile_events()

        assert (again.status, again.fixed, again.fixes) == ("ok", 0, [])
        [read] = stripe_sandbox.requests(method="GET", path="/v1/events")
        assert "created" in read["query"]
        later_from = first_cursor.last_event_created_at - missed_events.EVENTS_OVERLAP
        assert str(int(later_from.timestamp())) in read["query"]

        # A refund made in Stripe's dashboard, whose webhook is lost too.
        payment = Payment.objects.get(pk=paid.payment_id)
        get_gateway().create_refund(
            RefundRequest(
                payment_intent_id=payment.provider_payment_id,
                amount=10000,
                reason=None,
                metadata={},
                idempotency_key="dashboard-refund-1",
            )
        )

        third = reconcile_events()

        # Only the refund's events are new: what the first run fed is not fed again.
        third_types = {fix["type"] for fix in third.fixes}
        assert "charge.refunded" in third_types
        assert third_types <= {"charge.refunded", "refund.created", "refund.updated"}
        payment.refresh_from_db()
        assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 10000)
        cursor = ReconciliationCursor.objects.get(kind=ReconciliationKind.EVENTS)
        assert cursor.last_event_created_at >= first_cursor.last_event_created_at
        assert cursor.last_event_id != first_cursor.last_event_id

    def test_the_first_run_ever_reads_back_the_lookback(self, paid, stripe_sandbox, settings):
        settings.RECONCILIATION_EVENTS_LOOKBACK = timedelta(hours=72)
        before = clock.now()

        reconcile_events()

        [read] = stripe_sandbox.requests(method="GET", path="/v1/events")
        created_gt = int(read["query"].split("created%5Bgt%5D=")[1].split("&")[0])
        expected = (before - timedelta(hours=72)).timestamp()
        assert expected - 5 <= created_gt <= expected + 5

    def test_events_received_by_webhook_are_not_fed_again(self, paid, stripe_sandbox):
        reconcile_events()
        WebhookEvent.objects.update(source=WebhookEventSource.WEBHOOK)
        ReconciliationCursor.objects.all().delete()

        run = reconcile_events()

        assert (run.status, run.fixed) == ("ok", 0)
        assert not WebhookEvent.objects.filter(source=WebhookEventSource.RECONCILIATION).exists()

    def test_every_page_is_read(self, paid, alice, stripe_sandbox, monkeypatch):
        monkeypatch.setattr(missed_events, "EVENTS_PAGE_SIZE", 2)

        run = reconcile_events()

        events = stripe_sandbox.objects("event")
        assert run.examined == len(events) > 2
        assert len(stripe_sandbox.requests(method="GET", path="/v1/events")) == (len(events) + 1) // 2
        assert has_access(alice) is True

    def test_event_types_no_handler_wants_are_read_but_not_stored(self, paid, stripe_sandbox):
        run = reconcile_events()

        types = {e["type"] for e in stripe_sandbox.objects("event")}
        assert "customer.created" in types
        assert not WebhookEvent.objects.filter(type="customer.created").exists()
        assert run.examined == len(stripe_sandbox.objects("event")) > run.fixed

    def test_an_event_stored_from_a_webhook_whose_task_was_lost_is_handled(
        self, paid, alice, stripe_sandbox, settings
    ):
        settings.RECONCILIATION_PENDING_AFTER = timedelta(minutes=15)
        completed = next(
            e for e in stripe_sandbox.objects("event") if e["type"] == "checkout.session.completed"
        )
        stuck = WebhookEvent.objects.create(
            event_id=completed["id"],
            type=completed["type"],
            object_id=completed["data"]["object"]["id"],
            provider_created_at=clock.now(),
            payload=completed["data"]["object"],
        )
        WebhookEvent.objects.filter(pk=stuck.pk).update(received_at=clock.now() - timedelta(hours=1))

        run = reconcile_events()

        stuck.refresh_from_db()
        assert (stuck.status, stuck.source) == (WebhookEventStatus.PROCESSED, WebhookEventSource.WEBHOOK)
        assert {"event": stuck.event_id, "type": stuck.type, "status": "processed", "new": False} in run.fixes
        assert has_access(alice) is True

    def test_an_event_just_stored_from_a_webhook_is_left_to_its_worker(self, paid, stripe_sandbox, settings):
        settings.RECONCILIATION_PENDING_AFTER = timedelta(minutes=15)
        completed = next(
            e for e in stripe_sandbox.objects("event") if e["type"] == "checkout.session.completed"
        )
        fresh = WebhookEvent.objects.create(
            event_id=completed["id"],
            type=completed["type"],
            object_id=completed["data"]["object"]["id"],
            provider_created_at=clock.now(),
            payload=completed["data"]["object"],
        )

        run = reconcile_events()

        fresh.refresh_from_db()
        assert fresh.status == WebhookEventStatus.RECEIVED
        assert fresh.event_id not in {fix["event"] for fix in run.fixes}

    def test_a_stripe_outage_leaves_the_cursor_where_it_was(self, paid, alice, stripe_sandbox):
        stripe_sandbox.post("/faults", {"mode": "error", "status": 503, "path": "/v1/events"})

        run = reconcile_events()

        assert run.status == "failed"
        assert "TemporaryGatewayError" in run.error
        assert ReconciliationCursor.objects.get(kind=ReconciliationKind.EVENTS).last_event_id == ""
        assert has_access(alice) is False
        stripe_sandbox.delete("/faults")
        assert reconcile_events().status == "ok"
        assert has_access(alice) is True


class TestOneRunAtATime:
    @pytest.mark.parametrize("kind", [ReconciliationKind.PENDING_PAYMENTS, ReconciliationKind.EVENTS])
    def test_a_run_finding_its_kind_held_by_a_live_run_is_skipped(self, paid, stripe_sandbox, kind):
        holder = ReconciliationRun.objects.create(kind=kind)
        ReconciliationCursor.objects.create(
            kind=kind, locked_by=holder, locked_until=clock.now() + timedelta(minutes=5)
        )

        run = _run(kind)

        assert (run.status, run.examined, run.finished_at is not None) == ("skipped", 0, True)
        assert stripe_sandbox.requests(method="GET") == []
        assert Payment.objects.get(pk=paid.payment_id).status == PaymentStatus.PENDING

    def test_a_run_that_died_holding_the_lease_does_not_block_the_next(self, paid, alice):
        dead = ReconciliationRun.objects.create(kind=ReconciliationKind.PENDING_PAYMENTS)
        ReconciliationCursor.objects.create(
            kind=ReconciliationKind.PENDING_PAYMENTS,
            locked_by=dead,
            locked_until=clock.now() - timedelta(seconds=1),
        )

        run = reconcile_pending_payments(older_than=NOW)

        assert (run.status, run.fixed) == ("ok", 1)
        assert has_access(alice) is True
        assert ReconciliationCursor.objects.get(kind=ReconciliationKind.PENDING_PAYMENTS).locked_by is None
        dead.refresh_from_db()
        assert (dead.status, dead.error) == ("failed", "Stopped without finishing: its lease ran out.")

    def test_the_two_kinds_run_side_by_side(self, paid):
        pending = ReconciliationRun.objects.create(kind=ReconciliationKind.PENDING_PAYMENTS)
        ReconciliationCursor.objects.create(
            kind=ReconciliationKind.PENDING_PAYMENTS,
            locked_by=pending,
            locked_until=clock.now() + timedelta(minutes=5),
        )

        assert reconcile_events().status == "ok"


def _run(kind: str) -> ReconciliationRun:
    if kind == ReconciliationKind.EVENTS:
        return reconcile_events()
    return reconcile_pending_payments(older_than=NOW)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", [ReconciliationKind.PENDING_PAYMENTS, ReconciliationKind.EVENTS])
def test_two_runs_started_together_do_the_work_once(viewer_client, stripe_sandbox, kind):
    checkout = subscribe(viewer_client("alice"))
    stripe_sandbox.pay(checkout.provider_session_id, CARD)
    # Every call to Stripe is slow, so the first run is still going when the second starts.
    stripe_sandbox.post("/config", {"latency_ms": 300})
    stripe_sandbox.delete("/requests")

    statuses = run_concurrently(lambda _: _run(kind).status, 2)

    assert sorted(statuses) == ["ok", "skipped"]
    assert Payment.objects.get(pk=checkout.payment_id).status == PaymentStatus.SUCCEEDED
    if kind == ReconciliationKind.EVENTS:
        # The skipped run did not even read the event list.
        assert len(stripe_sandbox.requests(method="GET", path="/v1/events")) == 1
        assert WebhookEvent.objects.filter(type="checkout.session.completed").count() == 1
    else:
        assert (
            sandbox_calls(stripe_sandbox, "GET", f"/v1/checkout/sessions/{checkout.provider_session_id}") == 1
        )


class TestAdmin:
    @pytest.fixture
    def fixed_run(self, paid) -> ReconciliationRun:
        return reconcile_pending_payments(older_than=NOW)

    @staticmethod
    def staff(role: str) -> User:
        user = User.objects.create_user(username=role.lower(), is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        return user

    @pytest.mark.parametrize("role", ["Support", "Accounting"])
    def test_support_and_accounting_see_each_run_and_what_it_fixed(self, client, fixed_run, role):
        client.force_login(self.staff(role))

        listing = client.get("/admin/payments/reconciliationrun/")
        detail = client.get(f"/admin/payments/reconciliationrun/{fixed_run.pk}/change/")

        assert listing.status_code == 200
        assert "pending payments" in listing.content.decode()
        page = detail.content.decode()
        assert detail.status_code == 200
        assert fixed_run.fixes[0]["payment"] in page
        assert "payment: pending → succeeded" in page
        assert "subscription: pending → active" in page

    def test_a_fix_without_a_payment_links_its_checkout(self, client, alice, stripe_sandbox):
        Tariff.objects.create(slug="yearly", name="Yearly", amount=399000, currency="RUB", trial_days=7)
        body = alice.post("/api/v1/subscriptions/", {"tariff": "yearly"}, format="json").json()
        stripe_sandbox.pay(CheckoutSession.objects.get(pk=body["checkout"]["id"]).provider_session_id, CARD)
        run = reconcile_pending_payments(older_than=NOW)
        client.force_login(self.staff("Support"))

        page = client.get(f"/admin/payments/reconciliationrun/{run.pk}/change/").content.decode()

        assert f"/admin/payments/checkoutsession/{body['checkout']['id']}/change/" in page
        assert "subscription: pending → trialing" in page

    def test_event_runs_link_each_fed_event(self, client, paid):
        run = reconcile_events()
        client.force_login(self.staff("Support"))

        page = client.get(f"/admin/payments/reconciliationrun/{run.pk}/change/").content.decode()

        assert run.fixes[0]["event"] in page
        assert "/admin/payments/webhookevent/?q=evt_" in page

    def test_a_sweep_run_shows_each_charge_it_gave_back(self, client):
        # The unbooked-charges sweep notes charges, not rows of ours: its page once answered 500.
        run = ReconciliationRun.objects.create(
            kind=ReconciliationKind.UNBOOKED_CHARGES,
            provider="yookassa",
            status=ReconciliationRunStatus.OK,
            examined=3,
            fixed=1,
            fixes=[
                {
                    "charge": "2f1a-charge",
                    "amount": 39900,
                    "currency": "RUB",
                    "outcome": "refunded_without_row",
                }
            ],
        )
        client.force_login(self.staff("Accounting"))

        page = client.get(f"/admin/payments/reconciliationrun/{run.pk}/change/")

        assert page.status_code == 200
        assert "2f1a-charge" in page.content.decode()
        assert "refunded without row" in page.content.decode()

    def test_runs_cannot_be_added_changed_or_deleted(self, client, fixed_run):
        client.force_login(User.objects.create_superuser(username="root", email="root@example.com"))

        assert client.get("/admin/payments/reconciliationrun/add/").status_code == 403
        assert client.post(f"/admin/payments/reconciliationrun/{fixed_run.pk}/delete/").status_code == 403

    def test_managers_do_not_see_runs(self, client, fixed_run):
        client.force_login(self.staff("Manager"))

        assert client.get("/admin/payments/reconciliationrun/").status_code == 403


class TestEntryPoints:
    def test_reconcile_command_runs_both_jobs_now(self, paid, alice):
        out = StringIO()

        call_command("reconcile", "--older-than-minutes", "0", stdout=out)

        lines = out.getvalue().splitlines()
        assert lines[0].startswith("pending payments: ok, examined 1, fixed 1")
        assert lines[1].startswith("missed provider events: ok")
        assert has_access(alice) is True

    def test_reconcile_command_fails_loudly_when_a_run_failed(self, paid, stripe_sandbox):
        stripe_sandbox.post("/faults", {"mode": "error", "status": 503, "path": "/v1/"})

        with pytest.raises(Exception, match="Reconciliation failed"):
            call_command("reconcile", "--older-than-minutes", "0", stdout=StringIO(), stderr=StringIO())

    def test_tasks_use_the_settings(self, paid, alice, settings):
        settings.RECONCILIATION_PENDING_AFTER = timedelta(minutes=15)
        assert tasks.reconcile_pending_payments() == {"stripe": "ok"}
        assert has_access(alice) is False

        settings.RECONCILIATION_PENDING_AFTER = NOW
        assert tasks.reconcile_pending_payments() == {"stripe": "ok"}
        assert has_access(alice) is True
        assert tasks.reconcile_events() == {"stripe": "ok"}
        assert ReconciliationRun.objects.count() == 3
