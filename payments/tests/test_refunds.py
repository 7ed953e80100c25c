"""Staff refunds: one Stripe refund per refund row, never more than was captured, access as chosen."""

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.db.models import F

from billing.models import SubscriptionStatus
from core import clock
from payments.gateways import get_gateway
from payments.gateways.base import RefundRequest as GatewayRefundRequest
from payments.models import Payment, PaymentStatus, Refund, RefundReason, RefundStatus, WebhookEventStatus
from payments.services.refunds.approvals import RefundApprovalNotAllowed, refund_approve, refund_reject
from payments.services.refunds.provider_answers import refund_send
from payments.services.refunds.rules import PaymentNotRefundable
from payments.services.refunds.staff import RefundAmountTooLarge, refund_create
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.concurrency import run_concurrently
from payments.tests.refund_helpers import has_access, pay, sandbox_refunds, support_staff
from payments.tests.test_checkout_settlement import deliver_sandbox_events

R = RefundReason.REQUESTED_BY_CUSTOMER


@pytest.fixture
def payment(db, viewer_client, stripe_sandbox) -> Payment:
    return pay(viewer_client, stripe_sandbox)


@pytest.fixture
def agent(db):
    return support_staff("agent")


@pytest.mark.django_db
class TestRefundAmounts:
    def test_partial_then_the_rest_refund_once_each_at_stripe(self, payment, stripe_sandbox, agent):
        first = refund_create(payment=payment, amount=10000, reason=R, created_by=agent)
        payment.refresh_from_db()
        assert (first.status, payment.status, payment.refunded_amount) == (
            RefundStatus.SUCCEEDED,
            PaymentStatus.PARTIALLY_REFUNDED,
            10000,
        )

        rest = refund_create(payment=payment, amount=29900, reason=R, created_by=agent)
        payment.refresh_from_db()

        assert (rest.status, payment.status, payment.refunded_amount) == (
            RefundStatus.SUCCEEDED,
            PaymentStatus.REFUNDED,
            39900,
        )
        at_stripe = sandbox_refunds(stripe_sandbox)
        assert sorted(r["amount"] for r in at_stripe) == [10000, 29900]
        assert {r["id"] for r in at_stripe} == {first.provider_refund_id, rest.provider_refund_id}
        assert {r["metadata"]["refund_id"] for r in at_stripe} == {str(first.pk), str(rest.pk)}

    def test_more_than_is_left_is_refused_and_nothing_is_sent(self, payment, stripe_sandbox, agent):
        refund_create(payment=payment, amount=30000, reason=R, created_by=agent)

        with pytest.raises(RefundAmountTooLarge):
            refund_create(payment=payment, amount=9901, reason=R, created_by=agent)

        assert Refund.objects.count() == 1
        assert len(sandbox_refunds(stripe_sandbox)) == 1
        payment.refresh_from_db()
        assert payment.refunded_amount == 30000

    def test_the_same_form_token_twice_makes_one_refund(self, payment, stripe_sandbox, agent):
        key = uuid.uuid4()
        first = refund_create(payment=payment, amount=39900, reason=R, created_by=agent, request_key=key)
        again = refund_create(payment=payment, amount=39900, reason=R, created_by=agent, request_key=key)

        assert again.pk == first.pk
        assert Refund.objects.count() == 1
        assert len(sandbox_refunds(stripe_sandbox)) == 1

    def test_database_refuses_refunded_above_amount(self, payment):
        with pytest.raises(IntegrityError):
            Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("amount") + 1)

    def test_a_refund_stripe_refuses_fails_and_releases_its_amount(self, payment, stripe_sandbox, agent):
        # 300.00 refunded in Stripe's dashboard, its webhook not here yet: Stripe refuses 399.00.
        get_gateway().create_refund(
            GatewayRefundRequest(
                payment_intent_id=payment.provider_payment_id,
                amount=30000,
                reason=None,
                metadata={},
                idempotency_key="dashboard-1",
            )
        )
        failed = refund_create(payment=payment, amount=39900, reason=R, created_by=agent)
        assert (failed.status, failed.failure_reason) == (RefundStatus.FAILED, "amount_too_large")

        rest = refund_create(payment=payment, amount=9900, reason=R, created_by=agent)

        assert rest.status == RefundStatus.SUCCEEDED
        assert sorted(r["amount"] for r in sandbox_refunds(stripe_sandbox)) == [9900, 30000]


@pytest.mark.django_db(transaction=True)
def test_two_agents_refunding_at_once_make_one_stripe_refund(viewer_client, stripe_sandbox):
    payment = pay(viewer_client, stripe_sandbox)
    agents = [support_staff("agent-1"), support_staff("agent-2")]

    def refund(index: int) -> str:
        try:
            refund_create(
                payment=payment,
                amount=payment.amount,
                reason=R,
                created_by=agents[index],
                request_key=uuid.uuid4(),
            )
        except (RefundAmountTooLarge, PaymentNotRefundable):
            # Which one depends on whether the winner's refund had succeeded yet.
            return "refused"
        return "refunded"

    outcomes = run_concurrently(refund, 2)

    assert sorted(outcomes) == ["refunded", "refused"]
    assert len(sandbox_refunds(stripe_sandbox)) == 1
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, payment.amount)


@pytest.mark.django_db(transaction=True)
def test_two_agents_refunding_in_parts_at_once_cannot_slip_under_the_threshold(
    viewer_client, stripe_sandbox, settings
):
    settings.REFUND_APPROVAL_THRESHOLD = 20000
    payment = pay(viewer_client, stripe_sandbox)
    agents = [support_staff("agent-1"), support_staff("agent-2")]

    statuses = run_concurrently(
        lambda index: (
            refund_create(
                payment=payment, amount=19950, reason=R, created_by=agents[index], request_key=uuid.uuid4()
            ).status
        ),
        2,
    )

    # Whichever came second saw the first's 199.50 under the payment's lock.
    assert sorted(statuses) == [RefundStatus.AWAITING_APPROVAL, RefundStatus.SUCCEEDED]
    assert [r["amount"] for r in sandbox_refunds(stripe_sandbox)] == [19950]
    payment.refresh_from_db()
    assert payment.refunded_amount == 19950


@pytest.mark.django_db(transaction=True)
def test_double_submission_of_one_form_at_once_makes_one_refund(viewer_client, stripe_sandbox):
    payment = pay(viewer_client, stripe_sandbox)
    agent = support_staff("agent")
    key = uuid.uuid4()

    ids = run_concurrently(
        lambda _: (
            refund_create(payment=payment, amount=10000, reason=R, created_by=agent, request_key=key).pk
        ),
        2,
    )

    assert ids[0] == ids[1]
    assert Refund.objects.count() == 1
    assert len(sandbox_refunds(stripe_sandbox)) == 1


@pytest.mark.django_db
class TestApproval:
    @pytest.fixture(autouse=True)
    def low_threshold(self, settings):
        settings.REFUND_APPROVAL_THRESHOLD = 20000

    def test_above_threshold_waits_for_a_second_staff_member(self, payment, stripe_sandbox, agent):
        refund = refund_create(payment=payment, amount=30000, reason=R, created_by=agent)
        assert refund.status == RefundStatus.AWAITING_APPROVAL
        assert sandbox_refunds(stripe_sandbox) == []
        # The waiting refund holds its amount: nobody can refund it meanwhile.
        with pytest.raises(RefundAmountTooLarge):
            refund_create(payment=payment, amount=10000, reason=R, created_by=agent)

        with pytest.raises(RefundApprovalNotAllowed):
            refund_approve(refund=refund, approver=agent)
        assert sandbox_refunds(stripe_sandbox) == []

        approved = refund_approve(refund=refund, approver=support_staff("lead"))

        assert approved.status == RefundStatus.SUCCEEDED
        assert approved.approved_by.username == "lead"
        assert [r["amount"] for r in sandbox_refunds(stripe_sandbox)] == [30000]

    def test_partial_refunds_adding_up_above_the_threshold_wait_for_approval(
        self, payment, stripe_sandbox, agent
    ):
        first = refund_create(payment=payment, amount=19950, reason=R, created_by=agent)
        second = refund_create(payment=payment, amount=19950, reason=R, created_by=agent)

        assert (first.status, second.status) == (RefundStatus.SUCCEEDED, RefundStatus.AWAITING_APPROVAL)
        assert [r["amount"] for r in sandbox_refunds(stripe_sandbox)] == [19950]

    def test_a_refund_awaiting_approval_counts_towards_the_threshold(self, payment, stripe_sandbox, agent):
        refund_create(payment=payment, amount=30000, reason=R, created_by=agent)

        small = refund_create(payment=payment, amount=5000, reason=R, created_by=agent)

        assert small.status == RefundStatus.AWAITING_APPROVAL
        assert sandbox_refunds(stripe_sandbox) == []

    def test_at_or_below_threshold_goes_straight_to_stripe(self, payment, stripe_sandbox, agent):
        refund = refund_create(payment=payment, amount=20000, reason=R, created_by=agent)

        assert refund.status == RefundStatus.SUCCEEDED
        assert refund.approved_by is None

    def test_rejected_refund_sends_nothing_and_frees_the_amount(self, payment, stripe_sandbox, agent):
        refund = refund_create(payment=payment, amount=30000, reason=R, created_by=agent)

        rejected = refund_reject(refund=refund, rejected_by=support_staff("lead"), note="not eligible")

        assert rejected.status == RefundStatus.CANCELED
        assert "not eligible" in rejected.failure_reason
        assert sandbox_refunds(stripe_sandbox) == []
        assert refund_create(payment=payment, amount=10000, reason=R, created_by=agent).status == "succeeded"


@pytest.mark.django_db
class TestWebhook:
    def test_charge_refunded_for_our_refund_updates_our_row(self, payment, stripe_sandbox, api_client, agent):
        refund = refund_create(payment=payment, amount=10000, reason=R, created_by=agent)

        events = deliver_sandbox_events(api_client, stripe_sandbox)

        assert any(e.type == "charge.refunded" and e.status == WebhookEventStatus.PROCESSED for e in events)
        assert list(Refund.objects.values_list("pk", "status")) == [(refund.pk, RefundStatus.SUCCEEDED)]
        payment.refresh_from_db()
        assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 10000)

    def test_answer_lost_then_webhook_settles_our_pending_refund(
        self, payment, stripe_sandbox, api_client, agent, viewer_client
    ):
        # Stripe makes the refund but every answer to us is lost: our row stays pending.
        stripe_sandbox.post(
            "/faults",
            {"mode": "error", "path": "/v1/refunds", "method": "POST", "status": 500, "when": "after"},
        )
        refund = refund_create(payment=payment, amount=payment.amount, reason=R, created_by=agent)
        assert (refund.status, refund.provider_refund_id, refund.end_access) == (
            RefundStatus.PENDING,
            None,
            True,
        )
        assert has_access(viewer_client) is True

        deliver_sandbox_events(api_client, stripe_sandbox)

        refund.refresh_from_db()
        payment.refresh_from_db()
        assert Refund.objects.count() == 1
        assert refund.status == RefundStatus.SUCCEEDED
        assert refund.provider_refund_id == sandbox_refunds(stripe_sandbox)[0]["id"]
        assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, payment.amount)
        assert has_access(viewer_client) is False
        # Sending it again later (same key) finds the same refund at Stripe: still one.
        stripe_sandbox.delete("/faults")
        refund_send(refund=refund)
        assert len(sandbox_refunds(stripe_sandbox)) == 1


@pytest.mark.django_db
class TestAccess:
    def test_full_refund_ends_access_by_default(self, payment, viewer_client, agent):
        assert has_access(viewer_client) is True

        refund = refund_create(payment=payment, amount=payment.amount, reason=R, created_by=agent)

        assert refund.end_access is True
        assert has_access(viewer_client) is False
        payment.subscription.refresh_from_db()
        assert payment.subscription.status == SubscriptionStatus.CANCELED

    def test_partial_refund_keeps_access_by_default(self, payment, viewer_client, agent):
        refund = refund_create(payment=payment, amount=10000, reason=R, created_by=agent)

        assert refund.end_access is False
        assert has_access(viewer_client) is True

    def test_staff_may_end_access_on_a_partial_refund(self, payment, viewer_client, agent):
        refund_create(payment=payment, amount=10000, reason=R, created_by=agent, end_access=True)

        assert has_access(viewer_client) is False

    def test_staff_may_keep_access_on_a_full_refund(self, payment, viewer_client, agent):
        refund_create(payment=payment, amount=payment.amount, reason=R, created_by=agent, end_access=False)

        assert has_access(viewer_client) is True

    def test_refunding_a_period_a_renewal_followed_keeps_the_renewed_access(
        self, payment, viewer_client, agent
    ):
        # The viewer was renewed; support then refunds the first month in full. The second
        # month is paid and stays theirs, or we would hold 399.00 RUB that gives nothing.
        clock.advance(payment.period_end - clock.now() + timedelta(hours=1))
        assert renewal_run(subscription_id=payment.subscription_id) == RenewalOutcome.RENEWED

        refund = refund_create(payment=payment, amount=payment.amount, reason=R, created_by=agent)

        assert refund.status == RefundStatus.SUCCEEDED
        assert refund.end_access is False
        assert has_access(viewer_client) is True
        payment.subscription.refresh_from_db()
        assert payment.subscription.status == SubscriptionStatus.ACTIVE

    def test_ending_access_with_an_old_refund_spares_a_later_paid_period(self, payment, viewer_client, agent):
        # Staff ask to end access while refunding the first month: the renewal that paid the
        # current month (e.g. charged while the form was open) still gives it.
        clock.advance(payment.period_end - clock.now() + timedelta(hours=1))
        assert renewal_run(subscription_id=payment.subscription_id) == RenewalOutcome.RENEWED

        refund_create(payment=payment, amount=payment.amount, reason=R, created_by=agent, end_access=True)

        assert has_access(viewer_client) is True
