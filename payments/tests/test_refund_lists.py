"""A viewer reads their own refunds and refund requests, and each payment's refunds."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from accounts.tests.factories import BillingAccountFactory
from billing.tests.factories import SubscriptionFactory
from core import clock
from payments.models import RefundRequestStatus, RefundStatus
from payments.tests.factories import PaymentFactory, RefundFactory, RefundRequestFactory

pytestmark = pytest.mark.django_db

REFUND_FIELDS = {"id", "payment", "amount", "currency", "status", "created_at", "succeeded_at"}
REQUEST_FIELDS = {
    "id",
    "payment",
    "payment_amount",
    "currency",
    "reason",
    "status",
    "created_at",
    "decided_at",
    "decision_note",
    "refund",
}


def payment_of(user_id: str, **fields):
    account = BillingAccountFactory(user_id=user_id)
    return PaymentFactory(subscription=SubscriptionFactory(account=account), **fields)


def another_payment(subscription, **fields):
    # The factory's key derives from the period: several payments of one period need their own.
    return PaymentFactory(subscription=subscription, idempotency_key=f"test:{uuid.uuid4()}", **fields)


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("support-1", is_staff=True)


class TestRefundList:
    def test_viewer_sees_only_their_own_refunds_newest_first_with_their_payment(self, viewer_client):
        payment = payment_of("alice", amount=39900)
        older = RefundFactory(payment=payment, amount=10000, created_at=clock.now() - timedelta(days=2))
        newer = RefundFactory(
            payment=payment,
            amount=5000,
            status=RefundStatus.PENDING,
            created_at=clock.now() - timedelta(days=1),
        )
        RefundFactory(payment=payment_of("bob"))

        body = viewer_client("alice").get("/api/v1/refunds/").json()

        assert body["count"] == 2
        assert [r["id"] for r in body["results"]] == [str(newer.pk), str(older.pk)]
        first = body["results"][0]
        assert set(first) == REFUND_FIELDS
        assert (first["payment"], first["amount"], first["currency"], first["status"]) == (
            str(payment.pk),
            5000,
            "RUB",
            "pending",
        )

    def test_another_viewers_refunds_are_never_listed(self, viewer_client):
        RefundFactory(payment=payment_of("bob"))
        body = viewer_client("alice").get("/api/v1/refunds/").json()
        assert (body["count"], body["results"]) == (0, [])

    def test_staff_only_columns_never_reach_the_viewer(self, viewer_client, staff):
        RefundFactory(
            payment=payment_of("alice"),
            status=RefundStatus.AWAITING_APPROVAL,
            comment="Internal: looks like fraud",
            reason="fraudulent",
            created_by=staff,
            approved_by=staff,
            failure_reason="provider text",
        )
        response = viewer_client("alice").get("/api/v1/refunds/")
        refund = response.json()["results"][0]
        # Waiting for a second staff member is support's business: to the viewer it is pending.
        assert refund["status"] == "pending"
        for secret in ("Internal", "fraud", "support-1", "provider text", "created_by", "approved_by"):
            assert secret not in response.content.decode()

    def test_succeeded_refund_carries_its_date(self, viewer_client):
        when = clock.now() - timedelta(hours=3)
        RefundFactory(payment=payment_of("alice"), succeeded_at=when)
        refund = viewer_client("alice").get("/api/v1/refunds/").json()["results"][0]
        assert refund["status"] == "succeeded"
        assert refund["succeeded_at"] == when.isoformat().replace("+00:00", "Z")

    def test_list_is_paginated_like_the_other_lists(self, viewer_client):
        payment = payment_of("alice", amount=90000)
        for days in range(5):
            RefundFactory(payment=payment, amount=1000, created_at=clock.now() - timedelta(days=days))
        client = viewer_client("alice")

        first = client.get("/api/v1/refunds/?page_size=2").json()
        last = client.get("/api/v1/refunds/?page_size=2&page=3").json()

        assert set(first) == {"count", "next", "previous", "results"}
        assert (first["count"], len(first["results"]), first["previous"]) == (5, 2, None)
        assert "page=2" in first["next"]
        assert (len(last["results"]), last["next"]) == (1, None)

    def test_anonymous_caller_is_refused(self, api_client):
        assert api_client.get("/api/v1/refunds/").status_code == 401
        assert api_client.get("/api/v1/refund-requests/").status_code == 401


class TestRefundRequestList:
    def test_viewer_sees_how_each_request_was_decided(self, viewer_client, staff):
        account = BillingAccountFactory(user_id="alice")
        subscription = SubscriptionFactory(account=account)
        now = clock.now()
        open_request = RefundRequestFactory(payment=another_payment(subscription), created_at=now)
        approved_payment = another_payment(subscription, amount=39900)
        refund = RefundFactory(payment=approved_payment, comment="Viewer's request: ...", created_by=staff)
        approved = RefundRequestFactory(
            payment=approved_payment,
            status=RefundRequestStatus.APPROVED,
            decided_by=staff,
            decided_at=now - timedelta(hours=1),
            decision_note="Internal: approved as goodwill, watch this account",
            refund=refund,
            created_at=now - timedelta(days=1),
        )
        rejected = RefundRequestFactory(
            payment=another_payment(subscription),
            status=RefundRequestStatus.REJECTED,
            decided_by=staff,
            decided_at=now - timedelta(days=1),
            decision_note="The month was watched.",
            created_at=now - timedelta(days=2),
        )

        response = viewer_client("alice").get("/api/v1/refund-requests/")
        body = response.json()

        assert [r["id"] for r in body["results"]] == [
            str(open_request.pk),
            str(approved.pk),
            str(rejected.pk),
        ]
        got_open, got_approved, got_rejected = body["results"]
        assert set(got_open) == REQUEST_FIELDS
        assert (got_open["status"], got_open["decided_at"], got_open["refund"]) == ("open", None, None)
        assert got_approved["status"] == "approved"
        assert (got_approved["payment"], got_approved["payment_amount"], got_approved["currency"]) == (
            str(approved_payment.pk),
            39900,
            "RUB",
        )
        assert got_approved["refund"] == {
            "id": str(refund.pk),
            "amount": 39900,
            "currency": "RUB",
            "status": "succeeded",
            "created_at": got_approved["refund"]["created_at"],
            "succeeded_at": None,
        }
        # An approval's note is support's own; a rejection's reason is written for the viewer.
        assert got_approved["decision_note"] == ""
        assert (got_rejected["status"], got_rejected["decision_note"]) == (
            "rejected",
            "The month was watched.",
        )
        page = response.content.decode()
        assert "Internal" not in page and "support-1" not in page and "decided_by" not in page

    def test_another_viewers_requests_are_never_listed(self, viewer_client):
        RefundRequestFactory(payment=payment_of("bob"))
        mine = RefundRequestFactory(payment=payment_of("alice"))
        body = viewer_client("alice").get("/api/v1/refund-requests/").json()
        assert [r["id"] for r in body["results"]] == [str(mine.pk)]

    def test_list_is_paginated(self, viewer_client):
        account = BillingAccountFactory(user_id="alice")
        subscription = SubscriptionFactory(account=account)
        for _ in range(3):
            RefundRequestFactory(payment=another_payment(subscription))
        body = viewer_client("alice").get("/api/v1/refund-requests/?page_size=2").json()
        assert (body["count"], len(body["results"])) == (3, 2)
        assert body["next"] is not None


class TestRefundsOnPayments:
    def test_each_payment_lists_its_refunds(self, viewer_client):
        payment = payment_of("alice", amount=39900, refunded_amount=15000)
        partial = RefundFactory(payment=payment, amount=10000, created_at=clock.now() - timedelta(days=1))
        latest = RefundFactory(payment=payment, amount=5000, status=RefundStatus.PENDING)
        listed = viewer_client("alice").get("/api/v1/payments/").json()["results"][0]
        detail = viewer_client("alice").get(f"/api/v1/payments/{payment.pk}/").json()
        for body in (listed, detail):
            assert [r["id"] for r in body["refunds"]] == [str(latest.pk), str(partial.pk)]
            assert set(body["refunds"][0]) == REFUND_FIELDS - {"payment"}
            assert body["refunds"][0]["amount"] == 5000

    def test_subscription_payments_list_their_refunds_too(self, viewer_client):
        payment = payment_of("alice")
        refund = RefundFactory(payment=payment)
        url = f"/api/v1/subscriptions/{payment.subscription_id}/payments/"
        body = viewer_client("alice").get(url).json()
        assert [r["id"] for r in body["results"][0]["refunds"]] == [str(refund.pk)]

    @pytest.mark.parametrize("payments", [2, 20])
    def test_a_page_of_payments_reads_their_refunds_in_one_query(
        self, viewer_client, django_assert_max_num_queries, payments
    ):
        account = BillingAccountFactory(user_id="alice")
        subscription = SubscriptionFactory(account=account)
        for _ in range(payments):
            RefundFactory.create_batch(2, payment=another_payment(subscription), amount=100)
        client = viewer_client("alice")

        # The same for 2 payments or 20: the viewer's account (in a savepoint), the count, the
        # page, and the page's refunds in one query.
        with django_assert_max_num_queries(QUERIES_FOR_A_PAGE_OF_PAYMENTS):
            body = client.get("/api/v1/payments/?page_size=20").json()
        assert len(body["results"]) == payments
        assert all(len(p["refunds"]) == 2 for p in body["results"])


QUERIES_FOR_A_PAGE_OF_PAYMENTS = 6
