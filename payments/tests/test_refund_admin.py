"""Refunds from admin: a form, a confirmation, one refund per form, approvals by a second member."""

import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.tests.refund_helpers import has_access, pay, sandbox_refunds, support_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(viewer_client, stripe_sandbox) -> Payment:
    return pay(viewer_client, stripe_sandbox)


@pytest.fixture
def agent_client(client):
    client.force_login(support_staff("agent"))
    return client


def refund_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_refund", args=[payment.pk])


def form_data(
    key: uuid.UUID, amount: str = "399.00", access: str = "default", **extra: str
) -> dict[str, str]:
    return {
        "amount": amount,
        "reason": "requested_by_customer",
        "comment": "asked by phone",
        "access": access,
        "request_key": str(key),
        **extra,
    }


class TestRefundForm:
    def test_payment_page_offers_the_refund_to_support(self, payment, agent_client):
        page = agent_client.get(reverse("admin:payments_payment_change", args=[payment.pk]))

        assert refund_url(payment) in page.content.decode()

    def test_form_shows_what_is_left_and_prefills_it(self, payment, agent_client, stripe_sandbox):
        page = agent_client.get(refund_url(payment))

        assert page.status_code == 200
        assert "Left to refund: 399.00 RUB" in page.content.decode()
        form = page.context["form"]
        assert str(form.initial["amount"]) == "399.00"
        assert isinstance(form.initial["request_key"], uuid.UUID)

    def test_confirmation_step_then_one_refund(self, payment, agent_client, stripe_sandbox, viewer_client):
        key = uuid.uuid4()

        confirmation = agent_client.post(refund_url(payment), form_data(key))

        assert confirmation.status_code == 200
        content = confirmation.content.decode()
        assert "Please confirm" in content
        assert "Refund 399.00 RUB" in content
        assert "Access ends as soon as the refund succeeds" in content
        assert Refund.objects.count() == 0
        assert sandbox_refunds(stripe_sandbox) == []

        done = agent_client.post(refund_url(payment), form_data(key, confirm="yes"))

        assert done.status_code == 302
        refund = Refund.objects.get()
        assert (refund.status, refund.amount, refund.created_by.username, refund.comment) == (
            RefundStatus.SUCCEEDED,
            39900,
            "agent",
            "asked by phone",
        )
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.REFUNDED
        assert has_access(viewer_client) is False

    def test_partial_refund_keeps_access_unless_asked(self, payment, agent_client, viewer_client):
        confirmation = agent_client.post(refund_url(payment), form_data(uuid.uuid4(), amount="100.00"))
        assert "Access is kept" in confirmation.content.decode()

        agent_client.post(refund_url(payment), form_data(uuid.uuid4(), amount="100.00", confirm="yes"))

        assert has_access(viewer_client) is True
        agent_client.post(
            refund_url(payment), form_data(uuid.uuid4(), amount="50.00", access="end", confirm="yes")
        )
        assert has_access(viewer_client) is False

    def test_more_than_is_left_is_a_form_error_and_nothing_is_sent(
        self, payment, agent_client, stripe_sandbox
    ):
        agent_client.post(refund_url(payment), form_data(uuid.uuid4(), amount="300.00", confirm="yes"))

        page = agent_client.post(refund_url(payment), form_data(uuid.uuid4(), amount="99.01", confirm="yes"))

        assert page.status_code == 200
        assert page.context["form"].errors["amount"] == ["At most 99.00 RUB is left to refund."]
        assert Refund.objects.count() == 1
        assert len(sandbox_refunds(stripe_sandbox)) == 1

    def test_submitting_the_same_form_twice_makes_one_refund(self, payment, agent_client, stripe_sandbox):
        key = uuid.uuid4()

        first = agent_client.post(refund_url(payment), form_data(key, amount="100.00", confirm="yes"))
        second = agent_client.post(
            refund_url(payment), form_data(key, amount="100.00", confirm="yes"), follow=True
        )

        assert first.status_code == 302
        assert "already submitted" in second.content.decode()
        assert Refund.objects.count() == 1
        assert [r["amount"] for r in sandbox_refunds(stripe_sandbox)] == [10000]

    def test_staff_without_the_refund_permission_cannot_open_it(self, payment, client):
        manager = User.objects.create_user(username="manager", is_staff=True)
        manager.groups.add(Group.objects.get(name="Manager"))
        client.force_login(manager)

        assert client.get(refund_url(payment)).status_code == 403


class TestApprovals:
    @pytest.fixture(autouse=True)
    def low_threshold(self, settings):
        settings.REFUND_APPROVAL_THRESHOLD = 20000

    def approve(self, client, refund: Refund):
        return client.post(
            reverse("admin:payments_refund_changelist"),
            {"action": "approve", "_selected_action": [str(refund.pk)]},
            follow=True,
        )

    def test_confirmation_warns_when_refunds_in_parts_add_up_above_the_threshold(
        self, payment, agent_client, stripe_sandbox
    ):
        agent_client.post(refund_url(payment), form_data(uuid.uuid4(), amount="199.50", confirm="yes"))
        assert Refund.objects.get().status == RefundStatus.SUCCEEDED

        page = agent_client.post(refund_url(payment), form_data(uuid.uuid4(), amount="199.50"))

        assert "nothing is sent to Stripe until another staff member approves it" in page.content.decode()
        agent_client.post(refund_url(payment), form_data(uuid.uuid4(), amount="199.50", confirm="yes"))
        assert sorted(Refund.objects.values_list("status", flat=True)) == [
            RefundStatus.AWAITING_APPROVAL,
            RefundStatus.SUCCEEDED,
        ]
        assert [r["amount"] for r in sandbox_refunds(stripe_sandbox)] == [19950]

    def test_large_refund_waits_and_its_author_cannot_approve_it(self, payment, client, stripe_sandbox):
        agent = support_staff("agent")
        client.force_login(agent)
        page = client.post(refund_url(payment), form_data(uuid.uuid4()))
        assert "nothing is sent to Stripe until another staff member approves it" in page.content.decode()
        client.post(refund_url(payment), form_data(uuid.uuid4(), confirm="yes"))
        refund = Refund.objects.get()
        assert refund.status == RefundStatus.AWAITING_APPROVAL

        refused = self.approve(client, refund)

        assert "must be approved by another staff member" in refused.content.decode()
        refund.refresh_from_db()
        assert refund.status == RefundStatus.AWAITING_APPROVAL
        assert sandbox_refunds(stripe_sandbox) == []

        client.force_login(support_staff("lead"))
        self.approve(client, refund)

        refund.refresh_from_db()
        assert (refund.status, refund.approved_by.username) == (RefundStatus.SUCCEEDED, "lead")
        assert [r["amount"] for r in sandbox_refunds(stripe_sandbox)] == [39900]
