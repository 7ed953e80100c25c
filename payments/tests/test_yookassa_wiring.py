"""YooKassa as the second provider: a tariff on YooKassa is subscribed, renewed and refunded there.

Against the offline YooKassa sandbox as its own process, through the real gateway: what the
viewer sees (API answers, access), what accounting sees (rows, receipts) and what reached
YooKassa (its requests and objects).
"""

from datetime import timedelta
from typing import Any

import pytest

from billing.models import Subscription, SubscriptionStatus
from core import clock
from payments.models import (
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ProviderCustomer,
    ReceiptRegistration,
    ReconciliationRun,
    Refund,
    RefundStatus,
)
from payments.services.daily_report import reconciliation_report_for_day
from payments.services.reconciliation import (
    reconcile_events,
    reconcile_pending_payments,
    reconcile_unbooked_charges,
)
from payments.services.refunds.staff import refund_create
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.yookassa_helpers import YooKassaProcess
from payments.tests.yookassa_wiring import (
    SUCCEEDS,
    VIEWER_EMAIL,
    pay_and_settle,
    posts,
    subscribe,
    yookassa_tariff,
)
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/subscriptions/"


def sandbox_payment(sandbox: YooKassaProcess, payment_id: str) -> dict[str, Any]:
    status, body = sandbox.api("GET", f"/payments/{payment_id}")
    assert status == 200, body
    return dict(body)


class TestSubscribe:
    def test_a_yookassa_tariff_is_paid_on_yookassas_page_with_a_receipt(self, viewer_client, yookassa):
        tariff = yookassa_tariff()

        body = subscribe(viewer_client("alice", VIEWER_EMAIL), tariff)

        assert body["payment"]["provider"] == "yookassa"
        assert body["subscription"]["provider"] == "yookassa"
        checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
        assert checkout.provider == "yookassa"
        assert f"orderId={checkout.provider_session_id}" in body["checkout_url"]
        created = posts(yookassa, "/v3/payments")
        assert [r["idempotency_key"] for r in created] == [f"checkout:{checkout.pk}"]
        # Sent with a receipt, which YooKassa registers once the payment succeeds.
        assert sandbox_payment(yookassa, checkout.provider_session_id)["receipt_registration"] == "pending"

    def test_paying_with_the_test_card_starts_access_and_registers_the_receipt(self, viewer_client, yookassa):
        client = viewer_client("alice", VIEWER_EMAIL)
        body = subscribe(client, yookassa_tariff())

        checkout = pay_and_settle(yookassa, body["checkout"]["id"])

        assert checkout.status == CheckoutStatus.COMPLETE
        assert client.get("/api/v1/access/").json()["has_access"] is True
        (payment,) = client.get("/api/v1/payments/").json()["results"]
        assert (payment["status"], payment["provider"], payment["receipt_status"]) == (
            "succeeded",
            "yookassa",
            "succeeded",
        )
        saved = ProviderCustomer.objects.get(account__user_id="alice", provider="yookassa")
        assert saved.payment_method_ref and saved.card_last4 == "4444"

    def test_a_declined_card_is_shown_and_gives_no_access(self, viewer_client, yookassa):
        client = viewer_client("alice", VIEWER_EMAIL)
        body = subscribe(client, yookassa_tariff())

        pay_and_settle(yookassa, body["checkout"]["id"], card="5555555555554600")  # insufficient funds

        assert client.get("/api/v1/access/").json()["has_access"] is False
        result = client.get(f"/api/v1/checkouts/{body['checkout']['id']}/").json()
        assert result["failure_code"] == "insufficient_funds"
        assert Payment.objects.get().status != PaymentStatus.SUCCEEDED

    def test_a_viewer_without_email_is_refused_before_anything_is_written(self, viewer_client, yookassa):
        response = viewer_client("alice").post(URL, {"tariff": yookassa_tariff().slug}, format="json")

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "receipt_email_required"
        assert not Subscription.objects.exists()
        assert posts(yookassa, "/v3/payments") == []

    def test_a_stripe_tariff_next_to_it_still_goes_to_stripe(self, viewer_client, yookassa, stripe_sandbox):
        TariffFactory(slug="monthly", amount=39900, currency="RUB", provider="stripe")

        response = viewer_client("alice", VIEWER_EMAIL).post(URL, {"tariff": "monthly"}, format="json")

        assert response.status_code == 201
        assert response.json()["payment"]["provider"] == "stripe"
        assert posts(yookassa, "/v3/payments") == []

    @pytest.mark.parametrize(
        "fault",
        [
            {"mode": "error", "status": 500},
            {"mode": "rate_limit"},
            # Longer than the gateway's 2 s timeout; "after": YooKassa made the payment, the
            # answer was lost, and the retry under the same key gets that payment back.
            {"mode": "timeout", "hold_seconds": 3},
            {"mode": "timeout", "hold_seconds": 3, "when": "after"},
        ],
        ids=["500", "429", "timeout", "answer-lost"],
    )
    def test_an_outage_answers_503_and_the_retry_reuses_the_idempotence_key(
        self, viewer_client, yookassa, fault
    ):
        client = viewer_client("alice", VIEWER_EMAIL)
        tariff = yookassa_tariff()
        yookassa.fault(path="/v3/payments", method="POST", count=1, **fault)

        first = client.post(URL, {"tariff": tariff.slug}, format="json")
        second = client.post(URL, {"tariff": tariff.slug}, format="json")

        assert first.status_code == 503
        assert first.json()["error"]["code"] == "payment_provider_unavailable"
        assert second.status_code in (200, 201)
        keys = [r["idempotency_key"] for r in posts(yookassa, "/v3/payments")]
        assert len(keys) == 2 and keys[0] == keys[1] == f"checkout:{second.json()['checkout']['id']}"
        # One payment at YooKassa, whether or not the first call made it before failing.
        status, listed = yookassa.api("GET", "/payments")
        assert status == 200 and len(listed["items"]) == 1

    def test_a_card_update_without_an_email_is_refused_before_anything_is_written(
        self, viewer_client, yookassa
    ):
        client = viewer_client("alice", VIEWER_EMAIL)
        pay_and_settle(yookassa, subscribe(client, yookassa_tariff())["checkout"]["id"])
        # The auth service's token no longer carries one, and the account lost it (support cleared it).
        Subscription.objects.get().account.__class__.objects.update(email="")
        pages_before = CheckoutSession.objects.count()

        response = viewer_client("alice").post("/api/v1/payment-method/update/")

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "receipt_email_required"
        assert CheckoutSession.objects.count() == pages_before


class TestCardChecks:
    def test_a_trial_saves_the_card_and_releases_the_hold(self, viewer_client, yookassa):
        client = viewer_client("alice", VIEWER_EMAIL)
        body = subscribe(client, yookassa_tariff(trial_days=7))
        assert body["checkout"]["mode"] == "setup"

        checkout = pay_and_settle(yookassa, body["checkout"]["id"])

        assert Subscription.objects.get().status == SubscriptionStatus.TRIALING
        releases = posts(yookassa, f"/v3/payments/{checkout.provider_session_id}/cancel")
        assert [r["idempotency_key"] for r in releases] == [f"card-check-release:{checkout.pk}"]
        hold = sandbox_payment(yookassa, checkout.provider_session_id)
        assert (hold["status"], hold["cancellation_details"]["reason"]) == (
            "canceled",
            "canceled_by_merchant",
        )
        assert ProviderCustomer.objects.get(provider="yookassa").payment_method_ref

    def test_a_hold_left_open_is_released_by_the_reconciliation(self, viewer_client, yookassa):
        body = subscribe(viewer_client("alice", VIEWER_EMAIL), yookassa_tariff(trial_days=7))
        checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
        release = f"/v3/payments/{checkout.provider_session_id}/cancel"
        yookassa.fault(path=release, method="POST", mode="error", status=500, count=1)
        pay_and_settle(yookassa, body["checkout"]["id"])
        assert sandbox_payment(yookassa, checkout.provider_session_id)["status"] == "waiting_for_capture"

        run = reconcile_pending_payments(older_than=timedelta(0), provider="yookassa")

        assert sandbox_payment(yookassa, checkout.provider_session_id)["status"] == "canceled"
        assert {
            "checkout": str(checkout.pk),
            "card_check_released": checkout.provider_session_id,
        } in run.fixes
        keys = {r["idempotency_key"] for r in posts(yookassa, release)}
        assert keys == {f"card-check-release:{checkout.pk}"}
        # Nothing else to release: a second run sends nothing.
        reconcile_pending_payments(older_than=timedelta(0), provider="yookassa")
        assert len(posts(yookassa, release)) == 2
        assert Subscription.objects.get().status == SubscriptionStatus.TRIALING
        assert ReconciliationRun.objects.filter(provider="yookassa").count() == 2


class TestAfterPayment:
    @pytest.fixture
    def paid(self, viewer_client, yookassa) -> Subscription:
        body = subscribe(viewer_client("alice", VIEWER_EMAIL), yookassa_tariff())
        pay_and_settle(yookassa, body["checkout"]["id"])
        return Subscription.objects.get()

    def test_a_renewal_charges_the_saved_method_at_yookassa_with_a_receipt(self, paid, yookassa):
        clock.advance(paid.current_period_end - clock.now() + timedelta(minutes=1))

        assert renewal_run(subscription_id=paid.pk) == RenewalOutcome.RENEWED

        renewal = Payment.objects.get(kind=PaymentKind.RENEWAL)
        assert (renewal.provider, renewal.status) == ("yookassa", PaymentStatus.SUCCEEDED)
        assert renewal.receipt_registration == ReceiptRegistration.SUCCEEDED
        charged = sandbox_payment(yookassa, renewal.provider_payment_id or "")
        saved = ProviderCustomer.objects.get(provider="yookassa")
        assert charged["payment_method"]["id"] == saved.payment_method_ref
        paid.refresh_from_db()
        assert paid.status == SubscriptionStatus.ACTIVE and paid.current_period_start == renewal.period_start

    def test_a_staff_refund_reaches_yookassa_once_with_its_receipt(self, paid, yookassa):
        payment = Payment.objects.get()

        refund = refund_create(payment=payment, amount=10000, reason="goodwill")
        again = refund_create(payment=payment, amount=10000, reason="goodwill", request_key=None)

        assert refund.status == RefundStatus.SUCCEEDED
        sent = posts(yookassa, "/v3/refunds")
        assert [r["idempotency_key"] for r in sent][:1] == [f"refund:{refund.pk}"]
        status, body = yookassa.api("GET", f"/refunds/{refund.provider_refund_id}")
        assert status == 200 and body["receipt_registration"] == "succeeded"
        assert Refund.objects.filter(pk=refund.pk, provider="yookassa").exists()
        # Two refunds asked for, two made: one call each, whatever else happens.
        assert len({r["idempotency_key"] for r in sent}) == len(sent) == 2
        assert again.pk != refund.pk

    def test_a_receipt_still_being_registered_gets_its_final_word_from_the_reconciliation(self, paid):
        Payment.objects.update(receipt_registration=ReceiptRegistration.PENDING)

        run = reconcile_pending_payments(older_than=timedelta(0), provider="yookassa")

        assert Payment.objects.get().receipt_registration == ReceiptRegistration.SUCCEEDED
        assert any(fix.get("receipt_status") == "succeeded" for fix in run.fixes)


class TestReconciliationAndReports:
    def test_a_paid_page_whose_news_was_lost_is_booked_by_the_unbooked_charges_sweep(
        self, viewer_client, yookassa
    ):
        body = subscribe(viewer_client("alice", VIEWER_EMAIL), yookassa_tariff())
        checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
        yookassa.pay(checkout.provider_session_id or "", SUCCEEDS)  # no notification, no result page

        run = reconcile_unbooked_charges(provider="yookassa")

        assert run.provider == "yookassa"
        assert Payment.objects.get().status == PaymentStatus.SUCCEEDED
        assert Subscription.objects.get().status == SubscriptionStatus.ACTIVE

    def test_the_daily_report_agrees_with_yookassa_and_shows_its_fee(self, viewer_client, yookassa):
        body = subscribe(viewer_client("alice", VIEWER_EMAIL), yookassa_tariff())
        pay_and_settle(yookassa, body["checkout"]["id"])

        report = reconciliation_report_for_day(day=clock.now().date(), provider="yookassa")

        assert report.mismatches == []
        (rub,) = report.totals
        assert (rub.our_payments, rub.our_gross, rub.provider_charges, rub.provider_gross) == (
            1,
            39900,
            1,
            39900,
        )
        # The sandbox keeps 3.5% (13.965, rounded to even), as `income_amount` tells.
        assert (rub.provider_fees, rub.provider_net) == (1396, 39900 - 1396)

    def test_the_missed_events_job_has_nothing_to_read_at_yookassa(self, yookassa):
        run = reconcile_events(provider="yookassa")

        assert (run.provider, run.error, run.examined) == ("yookassa", "", 0)
