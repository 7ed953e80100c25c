"""The daily reconciliation report finds every difference between our day and Stripe's.

Payments are real checkouts paid in the offline sandbox and refunds go through our refund
service; then one side is tampered with (our rows in the database, Stripe's objects in the
sandbox's store) to produce each kind of mismatch.
"""

from datetime import UTC, date, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.tests.roles import staff_member
from payments.models import Payment, PaymentStatus, Refund, RefundReason, RefundStatus
from payments.services import daily_report
from payments.services.daily_report import reconciliation_report_for_day
from payments.services.refunds.approvals import refund_approve
from payments.services.refunds.staff import refund_create
from payments.tests.factories import PaymentFactory
from payments.tests.refund_helpers import pay
from payments.tests.sandbox_helpers import make_client, payment_session_params

pytestmark = pytest.mark.django_db
REPORT_URL = "/admin/payments/payment/reconciliation-report/"


def today() -> date:
    return timezone.now().astimezone(UTC).date()


def kinds(report) -> list[tuple[str, str]]:
    return sorted((m.kind, m.object_type) for m in report.mismatches)


@pytest.fixture
def store(_sandbox_server, stripe_sandbox):
    """The sandbox's object store, to change what Stripe has behind the API's back."""
    return _sandbox_server.sandbox.store


@pytest.fixture
def sdk(_sandbox_server, stripe_sandbox):
    return make_client(_sandbox_server)


def stripe_object(store, object_id: str) -> dict[str, Any]:
    obj = store.get(object_id)
    assert obj is not None
    return obj


def refund(payment: Payment, amount: int = 10000) -> Refund:
    done = refund_create(payment=payment, amount=amount, reason=RefundReason.REQUESTED_BY_CUSTOMER)
    assert done.status == RefundStatus.SUCCEEDED
    return done


class TestCleanDay:
    def test_a_day_that_matches_shows_no_mismatch_and_both_sides_totals(self, viewer_client, stripe_sandbox):
        first = pay(viewer_client, stripe_sandbox, "alice")
        pay(viewer_client, stripe_sandbox, "bob")
        refund(first, 10000)

        report = reconciliation_report_for_day(day=today())

        assert report.mismatches == []
        assert report.is_clean
        [rub] = report.totals
        fee = (39900 * 29 + 500) // 1000 + 30  # the sandbox's 2.9% + 30
        assert (rub.currency, rub.our_payments, rub.provider_charges) == ("RUB", 2, 2)
        assert (rub.our_gross, rub.our_refunds, rub.our_net) == (79800, 10000, 69800)
        assert (rub.provider_gross, rub.provider_refunds) == (79800, 10000)
        assert (rub.provider_fees, rub.provider_net) == (2 * fee, 79800 - 2 * fee - 10000)
        assert rub.our_net_money == "698.00 RUB"

    def test_a_refund_approved_days_after_it_was_asked_for_belongs_to_the_day_it_was_paid_back(
        self, viewer_client, stripe_sandbox, settings
    ):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        settings.REFUND_APPROVAL_THRESHOLD = 5000
        asker, approver = staff_member("Support", "asker"), staff_member("Support", "approver")
        waiting = refund_create(
            payment=payment, amount=10000, reason=RefundReason.REQUESTED_BY_CUSTOMER, created_by=asker
        )
        assert waiting.status == RefundStatus.AWAITING_APPROVAL
        # Asked for three days ago; approved and sent to Stripe today.
        Refund.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=3))
        assert refund_approve(refund=waiting, approver=approver).status == RefundStatus.SUCCEEDED

        asked_day = reconciliation_report_for_day(day=today() - timedelta(days=3))
        paid_back_day = reconciliation_report_for_day(day=today())

        assert (asked_day.totals, asked_day.mismatches) == ([], [])
        assert paid_back_day.mismatches == []
        [rub] = paid_back_day.totals
        assert (rub.our_refunds, rub.provider_refunds) == (10000, 10000)

    def test_another_day_is_empty(self, viewer_client, stripe_sandbox):
        pay(viewer_client, stripe_sandbox, "alice")

        report = reconciliation_report_for_day(day=today() - timedelta(days=2))

        assert (report.totals, report.mismatches) == ([], [])


class TestOurSideDiffers:
    def test_a_payment_stripe_never_charged_is_missing_at_stripe(self, stripe_sandbox):
        ghost = PaymentFactory(
            paid_at=timezone.now(), provider_payment_id="pi_ghost", provider_charge_id="ch_ghost"
        )

        report = reconciliation_report_for_day(day=today())

        [mismatch] = report.mismatches
        assert (mismatch.kind, mismatch.object_type, mismatch.our_id, mismatch.their_id) == (
            daily_report.MISSING_AT_PROVIDER,
            "payment",
            str(ghost.pk),
            "ch_ghost",
        )
        assert mismatch.label == "missing at Stripe"
        assert report.totals[0].our_gross == ghost.amount
        assert report.totals[0].provider_gross == 0

    def test_amount_currency_and_refunded_amount_that_differ_are_listed(self, viewer_client, stripe_sandbox):
        cheaper = pay(viewer_client, stripe_sandbox, "alice")
        in_euros = pay(viewer_client, stripe_sandbox, "bob")
        refunded = pay(viewer_client, stripe_sandbox, "carol")
        Payment.objects.filter(pk=cheaper.pk).update(amount=100)
        Payment.objects.filter(pk=in_euros.pk).update(currency="EUR")
        Payment.objects.filter(pk=refunded.pk).update(
            refunded_amount=500, status=PaymentStatus.PARTIALLY_REFUNDED
        )

        report = reconciliation_report_for_day(day=today())

        by_payment = {m.our_id: (m.kind, m.ours, m.theirs) for m in report.mismatches}
        assert by_payment == {
            str(cheaper.pk): (daily_report.AMOUNT_DIFFERS, "1.00 RUB", "399.00 RUB"),
            str(in_euros.pk): (daily_report.CURRENCY_DIFFERS, "EUR", "RUB"),
            str(refunded.pk): (daily_report.REFUNDED_DIFFERS, "5.00 RUB", "0.00 RUB"),
        }

    def test_a_payment_we_think_failed_differs_in_status(self, viewer_client, stripe_sandbox):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.FAILED)

        report = reconciliation_report_for_day(day=today())

        [mismatch] = report.mismatches
        assert (mismatch.kind, mismatch.our_id, mismatch.their_id) == (
            daily_report.STATUS_DIFFERS,
            str(payment.pk),
            payment.provider_charge_id,
        )
        assert mismatch.theirs == "succeeded"

    def test_a_payment_recorded_on_another_day_is_dated_another_day(self, viewer_client, stripe_sandbox):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        Payment.objects.filter(pk=payment.pk).update(paid_at=payment.paid_at - timedelta(days=3))

        report = reconciliation_report_for_day(day=today())

        assert kinds(report) == [(daily_report.OTHER_DAY, "payment")]
        assert report.mismatches[0].our_id == str(payment.pk)

    def test_a_refund_we_record_as_failed_or_for_another_amount_is_listed(
        self, viewer_client, stripe_sandbox
    ):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        failed = refund(payment, 10000)
        smaller = refund(payment, 5000)
        Refund.objects.filter(pk=failed.pk).update(status=RefundStatus.FAILED)
        Refund.objects.filter(pk=smaller.pk).update(amount=4000)

        report = reconciliation_report_for_day(day=today())

        by_refund = {m.our_id: (m.kind, m.object_type, m.their_id) for m in report.mismatches}
        assert by_refund == {
            str(failed.pk): (daily_report.STATUS_DIFFERS, "refund", failed.provider_refund_id),
            str(smaller.pk): (daily_report.AMOUNT_DIFFERS, "refund", smaller.provider_refund_id),
        }


class TestStripeSideDiffers:
    def test_a_charge_we_never_recorded_is_missing_with_us(self, sdk, stripe_sandbox):
        customer = sdk.v1.customers.create(params={"email": "stranger@example.com"})
        session = sdk.v1.checkout.sessions.create(params=payment_session_params(customer.id, amount=1234))
        stripe_sandbox.pay(session.id, "4242424242424242")

        report = reconciliation_report_for_day(day=today())

        [mismatch] = report.mismatches
        assert (mismatch.kind, mismatch.object_type, mismatch.our_id) == (
            daily_report.MISSING_WITH_US,
            "payment",
            None,
        )
        assert mismatch.their_id.startswith("ch_")
        assert mismatch.theirs == "12.34 EUR"
        assert [(t.currency, t.provider_gross, t.our_gross) for t in report.totals] == [("EUR", 1234, 0)]

    def test_a_refund_made_at_stripe_only_is_missing_with_us(self, viewer_client, sdk, stripe_sandbox):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        made_at_stripe = sdk.v1.refunds.create(
            params={"payment_intent": payment.provider_payment_id, "amount": 700}
        )

        report = reconciliation_report_for_day(day=today())

        assert kinds(report) == [
            (daily_report.MISSING_WITH_US, "refund"),
            (daily_report.REFUNDED_DIFFERS, "payment"),
        ]
        missing = next(m for m in report.mismatches if m.object_type == "refund")
        assert (missing.their_id, missing.theirs) == (made_at_stripe.id, "7.00 RUB")

    def test_a_charge_that_failed_or_changed_amount_at_stripe_is_listed(
        self, viewer_client, stripe_sandbox, store
    ):
        failed = pay(viewer_client, stripe_sandbox, "alice")
        changed = pay(viewer_client, stripe_sandbox, "bob")
        store.save({**stripe_object(store, failed.provider_charge_id), "status": "failed"})
        store.save({**stripe_object(store, changed.provider_charge_id), "amount": 40000})

        report = reconciliation_report_for_day(day=today())

        by_payment = {m.our_id: m.kind for m in report.mismatches}
        assert by_payment[str(failed.pk)] == daily_report.STATUS_DIFFERS
        assert by_payment[str(changed.pk)] == daily_report.AMOUNT_DIFFERS

    def test_a_stripe_refund_for_another_amount_is_listed(self, viewer_client, stripe_sandbox, store):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        ours = refund(payment, 10000)
        store.save({**stripe_object(store, ours.provider_refund_id), "amount": 9000})

        report = reconciliation_report_for_day(day=today())

        refund_mismatches = [(m.kind, m.our_id) for m in report.mismatches if m.object_type == "refund"]
        assert (daily_report.AMOUNT_DIFFERS, str(ours.pk)) in refund_mismatches

    def test_balance_transactions_missing_or_for_another_amount_are_listed(
        self, viewer_client, stripe_sandbox, store
    ):
        without = pay(viewer_client, stripe_sandbox, "alice")
        off = pay(viewer_client, stripe_sandbox, "bob")
        ours = refund(off, 10000)
        charge = stripe_object(store, without.provider_charge_id)
        # The charge points nowhere, and its ledger entry no longer names it.
        store.save({**stripe_object(store, charge["balance_transaction"]), "source": "ch_elsewhere"})
        store.save({**charge, "balance_transaction": "txn_gone"})
        off_txn = stripe_object(store, stripe_object(store, off.provider_charge_id)["balance_transaction"])
        store.save({**off_txn, "amount": 1})
        refund_txn = stripe_object(
            store, stripe_object(store, ours.provider_refund_id)["balance_transaction"]
        )
        store.save({**refund_txn, "amount": -1})

        report = reconciliation_report_for_day(day=today())

        assert sorted((m.kind, m.object_type, m.our_id) for m in report.mismatches) == sorted(
            [
                (daily_report.BALANCE_ENTRY_MISSING, "payment", str(without.pk)),
                (daily_report.BALANCE_ENTRY_DIFFERS, "payment", str(off.pk)),
                (daily_report.BALANCE_ENTRY_DIFFERS, "refund", str(ours.pk)),
            ]
        )


class TestAdminPage:
    def test_accounting_sees_totals_and_mismatches_of_the_day(self, client, viewer_client, stripe_sandbox):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        Payment.objects.filter(pk=payment.pk).update(amount=100)
        client.force_login(staff_member("Accounting"))

        response = client.get(REPORT_URL, {"day": today().isoformat()})

        page = response.content.decode()
        assert response.status_code == 200
        assert "399.00 RUB" in page  # Stripe's gross
        assert "1.00 RUB" in page  # ours
        assert "amount differs" in page
        assert "Stripe gross" in page
        assert "Stripe has" in page
        assert f"/admin/payments/payment/{payment.pk}/change/" in page
        # One provider configured: nothing to choose.
        assert 'name="provider"' not in page

    def test_a_clean_day_says_so(self, client, viewer_client, stripe_sandbox):
        pay(viewer_client, stripe_sandbox, "alice")
        client.force_login(staff_member("Accounting"))

        page = client.get(REPORT_URL, {"day": today().isoformat()}).content.decode()

        assert 'class="report-clean"' in page
        assert 'id="report-mismatches"' not in page

    def test_stripe_failing_shows_a_message_not_a_server_error(self, client, stripe_sandbox):
        stripe_sandbox.post("/faults", {"mode": "error", "status": 503, "path": "/v1/charges"})
        client.force_login(staff_member("Accounting"))

        response = client.get(REPORT_URL, {"day": today().isoformat()})

        assert response.status_code == 200
        assert "Could not read Stripe" in response.content.decode()

    @pytest.mark.parametrize("day", ["yesterday", "9999-12-31", "0001-01-01", "2026-02-30"])
    def test_a_malformed_day_is_refused_politely(self, client, stripe_sandbox, day):
        client.force_login(staff_member("Accounting"))

        response = client.get(REPORT_URL, {"day": day})

        assert response.status_code == 200
        assert "YYYY-MM-DD" in response.content.decode()

    @pytest.mark.parametrize("role", ["Support", "Manager"])
    def test_others_may_not_see_it(self, client, stripe_sandbox, role):
        client.force_login(staff_member(role))

        assert client.get(REPORT_URL).status_code == 403
        assert stripe_sandbox.requests(path_prefix="/v1/") == []

    def test_the_payments_changelist_links_it_for_accounting_only(self, client, stripe_sandbox):
        client.force_login(staff_member("Accounting"))
        for_accounting = client.get("/admin/payments/payment/").content.decode()
        client.force_login(staff_member("Support"))
        for_support = client.get("/admin/payments/payment/").content.decode()

        assert REPORT_URL in for_accounting
        assert REPORT_URL not in for_support


class TestCommand:
    def test_prints_the_totals_and_no_mismatch(self, viewer_client, stripe_sandbox):
        pay(viewer_client, stripe_sandbox, "alice")
        out = StringIO()

        call_command("reconciliation_report", "--day", today().isoformat(), stdout=out)

        text = out.getvalue()
        assert f"Reconciliation report for {today().isoformat()} (UTC)" in text
        assert "RUB: ours 1 payments, gross 399.00 RUB" in text
        assert "Stripe 1 charges, gross 399.00 RUB" in text
        assert "No mismatches." in text

    def test_lists_each_mismatch_and_fails(self, viewer_client, stripe_sandbox):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        Payment.objects.filter(pk=payment.pk).update(amount=100)
        out = StringIO()

        with pytest.raises(CommandError, match="1 mismatch with Stripe"):
            call_command("reconciliation_report", "--day", today().isoformat(), stdout=out)

        assert f"amount differs: payment {payment.pk} / {payment.provider_charge_id}" in out.getvalue()
        assert "we have 1.00 RUB, Stripe has 399.00 RUB" in out.getvalue()

    def test_a_stripe_failure_is_a_command_error(self, stripe_sandbox):
        stripe_sandbox.post("/faults", {"mode": "error", "status": 503, "path": "/v1/refunds"})

        with pytest.raises(CommandError, match="Could not read Stripe"):
            call_command("reconciliation_report", "--day", today().isoformat(), stdout=StringIO())

    @pytest.mark.parametrize("day", ["yesterday", "9999-12-31"])
    def test_a_day_that_is_no_sensible_day_is_a_command_error(self, day):
        with pytest.raises(CommandError, match="YYYY-MM-DD"):
            call_command("reconciliation_report", "--day", day, stdout=StringIO())
