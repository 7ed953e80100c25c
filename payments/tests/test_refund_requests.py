"""Viewers ask for a refund; support approves (a refund at Stripe) or rejects (an email with the reason)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import BillingAccount
from notifications.models import Notice, NoticeKind
from notifications.services.notices import notices_dispatch
from payments.models import Payment, PaymentStatus, RefundRequest, RefundRequestStatus, RefundStatus
from payments.services.refunds.viewer_requests import RefundRequestNotOpen, refund_request_reject
from payments.tests.refund_helpers import has_access, pay, sandbox_refunds, support_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(viewer_client, stripe_sandbox) -> Payment:
    return pay(viewer_client, stripe_sandbox, email="alice@example.com")


def ask(viewer_client, payment: Payment, user_id: str = "alice", **body: str):
    return viewer_client(user_id).post(
        f"/api/v1/payments/{payment.pk}/refund-request/", body or {"reason": "Charged twice"}, format="json"
    )


class TestRefundRequestApi:
    def test_viewer_opens_a_request_for_their_payment(self, payment, viewer_client):
        response = ask(viewer_client, payment)

        assert response.status_code == 201
        body = response.json()
        assert (body["payment"], body["reason"], body["status"]) == (str(payment.pk), "Charged twice", "open")
        assert RefundRequest.objects.get().account.user_id == "alice"

    def test_another_viewers_payment_is_not_found(self, payment, viewer_client):
        response = ask(viewer_client, payment, user_id="mallory")

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert not RefundRequest.objects.exists()

    def test_outside_the_window_is_refused(self, payment, viewer_client, settings):
        settings.REFUND_REQUEST_WINDOW_DAYS = 14
        Payment.objects.filter(pk=payment.pk).update(paid_at=payment.paid_at - timedelta(days=15))

        response = ask(viewer_client, payment)

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "refund_window_closed"

    def test_one_open_request_per_payment(self, payment, viewer_client):
        assert ask(viewer_client, payment).status_code == 201

        again = ask(viewer_client, payment)

        assert again.status_code == 409
        assert again.json()["error"]["code"] == "refund_request_exists"
        assert RefundRequest.objects.count() == 1

    def test_unpaid_payment_is_refused(self, payment, viewer_client):
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PENDING)

        response = ask(viewer_client, payment)

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "payment_not_refundable"

    def test_the_viewer_sends_only_a_reason(self, payment, viewer_client):
        response = ask(viewer_client, payment, reason="x", amount="1")

        assert response.status_code == 400
        assert response.json()["error"]["details"] == {"amount": ["This field is not accepted."]}


class TestDecisionsInAdmin:
    @pytest.fixture
    def open_request(self, payment, viewer_client) -> RefundRequest:
        ask(viewer_client, payment)
        return RefundRequest.objects.get()

    @pytest.fixture
    def support(self, client):
        client.force_login(support_staff("agent"))
        return client

    @staticmethod
    def decide_url(refund_request: RefundRequest, decision: str) -> str:
        return reverse("admin:payments_refundrequest_decide", args=[refund_request.pk, decision])

    def test_request_page_offers_approve_and_reject(self, open_request, support):
        page = support.get(
            reverse("admin:payments_refundrequest_change", args=[open_request.pk])
        ).content.decode()

        assert self.decide_url(open_request, "approve") in page
        assert self.decide_url(open_request, "reject") in page

    def test_approve_refunds_the_rest_at_stripe_and_ends_access(
        self, open_request, support, stripe_sandbox, viewer_client
    ):
        page = support.get(self.decide_url(open_request, "approve")).content.decode()
        assert "Refund 399.00 RUB" in page

        support.post(self.decide_url(open_request, "approve"), {"note": ""})

        open_request.refresh_from_db()
        assert (open_request.status, open_request.decided_by.username) == (
            RefundRequestStatus.APPROVED,
            "agent",
        )
        assert open_request.refund.status == RefundStatus.SUCCEEDED
        assert [r["amount"] for r in sandbox_refunds(stripe_sandbox)] == [39900]
        assert has_access(viewer_client) is False
        # Decided: a second approval does nothing more.
        support.post(self.decide_url(open_request, "approve"), {"note": ""})
        assert len(sandbox_refunds(stripe_sandbox)) == 1

    def test_reject_emails_the_viewer_the_reason(self, open_request, support, stripe_sandbox):
        missing = support.post(self.decide_url(open_request, "reject"), {"note": ""})
        assert missing.status_code == 200
        assert missing.context["form"].errors["note"]
        notices_dispatch()  # the payment's receipt
        mail.outbox.clear()

        support.post(self.decide_url(open_request, "reject"), {"note": "You watched 12 films this month."})

        open_request.refresh_from_db()
        assert open_request.status == RefundRequestStatus.REJECTED
        assert sandbox_refunds(stripe_sandbox) == []
        assert notices_dispatch() == 1
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["alice@example.com"]
        assert "You watched 12 films this month." in mail.outbox[0].body

    def test_after_a_decision_the_viewer_may_ask_again(self, open_request, support, viewer_client, payment):
        support.post(self.decide_url(open_request, "reject"), {"note": "No."})

        assert ask(viewer_client, payment).status_code == 201


class TestRejectionNotice:
    """The rejection reaches the viewer as a notice, in their language, once per request."""

    EXPECTED = {
        "en": (
            "Your refund request for 399.00 RUB",
            ["We looked at your request", "Monthly", "Reason: Outside the 14 days & our policy."],
        ),
        "ru": (
            "Ваш запрос на возврат 399,00\u00a0₽",
            ["Мы рассмотрели ваш запрос", "«Monthly»", "Причина: Outside the 14 days & our policy."],
        ),
    }

    @pytest.mark.parametrize("language", ["en", "ru"])
    def test_rejecting_records_one_notice_in_the_viewers_language_with_the_note(
        self, payment, viewer_client, language
    ):
        BillingAccount.objects.filter(pk=payment.subscription.account_id).update(language=language)
        ask(viewer_client, payment)
        request = RefundRequest.objects.get()
        notices_dispatch()  # the payment's receipt
        mail.outbox.clear()

        refund_request_reject(
            refund_request=request, staff=support_staff("agent"), note="Outside the 14 days & our policy."
        )

        (notice,) = Notice.objects.filter(kind=NoticeKind.REFUND_REQUEST_REJECTED)
        assert (notice.payment_id, notice.subscription_id) == (payment.pk, payment.subscription_id)
        assert notice.context["note"] == "Outside the 14 days & our policy."
        assert notices_dispatch() == 1
        (message,) = mail.outbox
        subject, facts = self.EXPECTED[language]
        assert (message.to, message.subject) == (["alice@example.com"], subject)
        html = message.alternatives[0][0]
        for fact in facts:
            assert fact in message.body, fact
        assert "Outside the 14 days &amp; our policy." in html
        notice.refresh_from_db()
        assert notice.language == language

    def test_a_repeated_rejection_records_no_second_notice(self, payment, viewer_client):
        ask(viewer_client, payment)
        request = RefundRequest.objects.get()
        refund_request_reject(refund_request=request, staff=support_staff("agent"), note="No.")

        with pytest.raises(RefundRequestNotOpen):
            refund_request_reject(refund_request=request, staff=support_staff("lead"), note="Still no.")

        (notice,) = Notice.objects.filter(kind=NoticeKind.REFUND_REQUEST_REJECTED)
        assert notice.context["note"] == "No."
