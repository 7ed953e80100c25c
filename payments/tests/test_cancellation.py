"""Support cancels a viewer's subscription from admin: now or at the period end, with a refund of what is left."""

import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.tests.roles import staff_member
from billing.models import Subscription, SubscriptionStatus
from core import clock
from core.audit import AuditAction
from notifications.emails import notice_render
from notifications.models import Notice, NoticeKind
from payments.models import Payment, Refund, RefundStatus
from payments.services.cancellation import prorated_amount
from payments.services.refunds.staff import refund_create
from payments.tests.refund_helpers import has_access

# The provider only sets the scene: the in-memory one (billing/tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_provider")]
S = SubscriptionStatus


def cancel_url(subscription: Subscription) -> str:
    return reverse("admin:billing_subscription_cancel", args=[subscription.pk])


def form_data(key: uuid.UUID, when: str, refund: bool = False, **extra: str) -> dict[str, str]:
    data = {
        "when": when,
        "refund_reason": "requested_by_customer",
        "reason": "Viewer asked by phone",
        "request_key": str(key),
        **extra,
    }
    if refund:
        data["refund"] = "on"
    return data


def expected_refund(payment: Payment, at: datetime) -> int:
    """The unused part of the payment's period at `at`, in whole seconds, rounded half up."""
    assert payment.period_start is not None and payment.period_end is not None
    paid = int((payment.period_end - payment.period_start).total_seconds())
    unused = int((payment.period_end - at).total_seconds())
    share = Fraction(payment.amount * unused, paid)
    return int(share + Fraction(1, 2))


@pytest.fixture
def agent(client):
    client.force_login(staff_member("Support", "agent"))
    return client


class TestProration:
    @pytest.mark.parametrize(
        ("elapsed", "expected"),
        [
            (timedelta(0), 30000),
            (timedelta(days=10), 20000),
            # 30000 * (3 days less a second) / 30 days = 2999.9988…: rounded to 3000.
            (timedelta(days=27, seconds=1), 3000),
            # 30000 * 1 second / 30 days = 0.0116 minor units: rounded to nothing.
            (timedelta(days=30, seconds=-1), 0),
            (timedelta(days=30), 0),
            (timedelta(days=31), 0),
        ],
    )
    def test_unused_part_is_counted_in_seconds_and_rounded_to_minor_units(self, elapsed, expected):
        start = datetime(2027, 3, 1, tzinfo=UTC)

        amount, _, paid = prorated_amount(
            amount=30000, period_start=start, period_end=start + timedelta(days=30), at=start + elapsed
        )

        assert (amount, paid) == (expected, 30 * 86400)


class TestCancelNowWithRefund:
    def test_access_ends_and_the_unused_part_is_refunded_once_at_stripe(
        self, paid_subscription, agent, memory_provider, viewer_client
    ):
        subscription = paid_subscription()
        payment = Payment.objects.get(subscription=subscription)
        clock.advance(timedelta(days=10, hours=3))
        key = uuid.uuid4()

        confirmation = agent.post(cancel_url(subscription), form_data(key, "now", refund=True))

        assert confirmation.status_code == 200
        priced_at = confirmation.context["form"].cleaned_data["priced_at"]
        amount = expected_refund(payment, priced_at)
        content = confirmation.content.decode()
        assert "Access ends now" in content
        assert f"Refund {amount // 100}.{amount % 100:02d} RUB" in content
        assert memory_provider.refunds() == []
        assert has_access(viewer_client)

        done = agent.post(cancel_url(subscription), {**confirmation.context["form"].data, "confirm": "yes"})

        assert done.status_code == 302
        subscription.refresh_from_db()
        assert (subscription.status, subscription.ended_at is not None) == (S.CANCELED, True)
        assert not has_access(viewer_client)
        refund = Refund.objects.get()
        assert (refund.payment_id, refund.amount, refund.status, refund.created_by.username) == (
            payment.pk,
            amount,
            RefundStatus.SUCCEEDED,
            "agent",
        )
        assert 0 < amount < payment.amount
        assert [refund.amount for refund in memory_provider.refunds()] == [amount]
        entry = LogEntry.objects.get(additional_data__action=AuditAction.SUBSCRIPTION_CANCEL.value)
        assert (entry.actor.username, entry.additional_data["reason"]) == ("agent", "Viewer asked by phone")
        assert entry.changes_dict["status"] == [S.ACTIVE, S.CANCELED]
        assert entry.additional_data["refund_amount"] == amount

    def test_double_submission_cancels_once_and_refunds_once(self, paid_subscription, agent, memory_provider):
        subscription = paid_subscription()
        clock.advance(timedelta(days=5))
        key = uuid.uuid4()
        confirmation = agent.post(cancel_url(subscription), form_data(key, "now", refund=True))
        confirmed = {**confirmation.context["form"].data, "confirm": "yes"}

        first = agent.post(cancel_url(subscription), confirmed)
        second = agent.post(cancel_url(subscription), confirmed)

        assert (first.status_code, second.status_code) == (302, 302)
        assert Refund.objects.count() == 1
        assert len(memory_provider.refunds()) == 1
        assert (
            LogEntry.objects.filter(additional_data__action=AuditAction.SUBSCRIPTION_CANCEL.value).count()
            == 1
        )
        messages = [str(m) for m in second.wsgi_request._messages]
        assert any("already submitted" in m for m in messages)


class TestCancelAtPeriodEnd:
    def test_access_is_kept_until_the_period_end_with_autopay_off_and_no_refund(
        self, paid_subscription, agent, memory_provider, viewer_client
    ):
        subscription = paid_subscription()
        key = uuid.uuid4()

        confirmation = agent.post(cancel_url(subscription), form_data(key, "period_end"))
        assert "Access is kept until the period ends" in confirmation.content.decode()
        assert "No refund." in confirmation.content.decode()
        done = agent.post(cancel_url(subscription), {**confirmation.context["form"].data, "confirm": "yes"})

        assert done.status_code == 302
        subscription.refresh_from_db()
        assert (subscription.status, subscription.cancel_at_period_end, subscription.autopay) == (
            S.ACTIVE,
            True,
            False,
        )
        assert has_access(viewer_client)
        assert Refund.objects.count() == 0
        assert memory_provider.refunds() == []

    def test_a_refund_at_the_period_end_is_refused(self, paid_subscription, agent):
        subscription = paid_subscription()

        page = agent.post(cancel_url(subscription), form_data(uuid.uuid4(), "period_end", refund=True))

        assert "only when access ends now" in page.content.decode()
        subscription.refresh_from_db()
        assert not subscription.cancel_at_period_end


class TestPermission:
    def test_staff_without_the_permission_cannot_cancel(self, paid_subscription, client):
        subscription = paid_subscription()
        accountant = staff_member("Accounting", "accountant")
        client.force_login(accountant)
        key = uuid.uuid4()

        shown = client.get(cancel_url(subscription))
        posted = client.post(
            cancel_url(subscription),
            {**form_data(key, "now"), "priced_at": clock.now().isoformat(), "confirm": "yes"},
        )
        page = client.get(reverse("admin:billing_subscription_change", args=[subscription.pk]))

        assert (shown.status_code, posted.status_code) == (403, 403)
        assert cancel_url(subscription) not in page.content.decode()
        subscription.refresh_from_db()
        assert subscription.status == S.ACTIVE

    def test_support_has_the_permission_and_sees_the_action(self, paid_subscription, agent):
        subscription = paid_subscription()

        page = agent.get(reverse("admin:billing_subscription_change", args=[subscription.pk]))

        assert Group.objects.get(name="Support").permissions.filter(codename="cancel_subscription").exists()
        assert cancel_url(subscription) in page.content.decode()


class TestRefundEmail:
    @pytest.mark.parametrize(
        ("language", "ended"),
        [("en", "your access to it has ended"), ("ru", "доступ по ней закрыт")],
    )
    def test_full_refund_email_says_that_access_ended(self, paid_subscription, language, ended):
        subscription = paid_subscription()
        subscription.account.language = language
        subscription.account.save(update_fields=["language"])
        payment = Payment.objects.get(subscription=subscription)

        refund_create(payment=payment, amount=payment.amount, reason="requested_by_customer")

        subscription.refresh_from_db()
        assert subscription.status == S.CANCELED
        notice = Notice.objects.get(kind=NoticeKind.REFUND_ISSUED)
        email = notice_render(notice, language=language)
        assert ended in email.text
        assert ended in email.html

    def test_partial_refund_that_keeps_access_says_nothing_of_it(self, paid_subscription):
        subscription = paid_subscription()
        payment = Payment.objects.get(subscription=subscription)

        refund_create(payment=payment, amount=10000, reason="requested_by_customer")

        notice = Notice.objects.get(kind=NoticeKind.REFUND_ISSUED)
        assert "access" not in notice_render(notice, language="en").text
