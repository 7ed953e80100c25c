"""Every staff action that changes money or access leaves an audit entry: who, when, what, before/after, why."""

import uuid
from datetime import UTC, datetime

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone

from accounts.tests.roles import staff_member
from billing.models import Subscription
from billing.services import subscription_extend
from billing.tests.factories import SubscriptionFactory
from core.audit import AuditAction
from notifications.models import Notice, NoticeKind, NoticeStatus
from payments.models import Payment, Refund, RefundRequest, WebhookEvent, WebhookEventStatus
from payments.services.refunds.approvals import refund_approve, refund_reject
from payments.services.refunds.staff import refund_create
from payments.services.refunds.viewer_requests import (
    refund_request_approve,
    refund_request_create,
    refund_request_reject,
)
from payments.services.webhooks import webhook_event_reprocess
from payments.tests.refund_helpers import pay
from tariffs.models import PeriodUnit, PromoCode, PromoDuration, PromoKind, Tariff
from tariffs.tests.factories import PromoCodeFactory, TariffFactory

pytestmark = pytest.mark.django_db
AUDIT_LOG = reverse("admin:auditlog_logentry_changelist")


def entries(action: AuditAction) -> list[LogEntry]:
    return list(LogEntry.objects.filter(additional_data__action=action.value).order_by("timestamp", "pk"))


def only_entry(action: AuditAction) -> LogEntry:
    found = entries(action)
    assert len(found) == 1, found
    return found[0]


def about(entry: LogEntry, obj: Model) -> bool:
    return (entry.content_type, entry.object_pk) == (ContentType.objects.get_for_model(obj), str(obj.pk))


@pytest.fixture
def payment(viewer_client, memory_provider) -> Payment:
    # The provider only sets the scene for what staff do: the in-memory one.
    return pay(viewer_client, memory_provider, email="alice@example.com")


class TestCatalogueChangesInAdmin:
    def test_managers_tariff_price_change_is_logged_with_who_and_before_after(self, client):
        tariff = TariffFactory(slug="monthly-hd", name="Monthly HD", amount=39900)
        manager = staff_member("Manager")
        client.force_login(manager)

        response = client.post(
            reverse("admin:tariffs_tariff_change", args=[tariff.pk]),
            {
                "name": "Monthly HD",
                "slug": "monthly-hd",
                "description": tariff.description,
                "price": "499.00",
                "currency": "RUB",
                "period_count": "1",
                "period_unit": PeriodUnit.MONTH,
                "trial_days": "0",
                "is_active": "on",
                "display_order": "0",
                # A price change is confirmed first (tariffs/tests/test_admin_confirmation.py).
                "_confirmed": "Yes, save",
            },
        )

        assert response.status_code == 302
        entry = LogEntry.objects.get_for_object(tariff).get(action=LogEntry.Action.UPDATE)
        assert entry.actor == manager
        assert entry.changes_dict == {"amount": ["39900", "49900"]}
        assert entry.timestamp is not None

    def test_managers_promo_code_edit_is_logged(self, client):
        promo = PromoCodeFactory(code="SPRING-15", percent_off=15, duration=PromoDuration.ONCE)
        manager = staff_member("Manager")
        client.force_login(manager)

        response = client.post(
            reverse("admin:tariffs_promocode_change", args=[promo.pk]),
            {
                "code": "SPRING-15",
                "description": "",
                "kind": PromoKind.PERCENT,
                "percent_off": "20",
                "amount": "",
                "currency": "",
                "duration": PromoDuration.ONCE,
                "duration_periods": "",
                "valid_from_0": "",
                "valid_from_1": "",
                "valid_until_0": "",
                "valid_until_1": "",
                "max_redemptions": "",
                "max_per_account": "1",
                # A discount change is confirmed first (tariffs/tests/test_admin_confirmation.py).
                "_confirmed": "Yes, save",
            },
        )

        assert response.status_code == 302
        promo.refresh_from_db()
        entry = LogEntry.objects.get_for_object(promo).get(action=LogEntry.Action.UPDATE)
        assert entry.actor == manager
        assert entry.changes_dict == {"percent_off": ["15", "20"], "is_active": ["True", "False"]}

    def test_uses_counted_at_subscribe_are_not_logged(self):
        promo = PromoCodeFactory()
        PromoCode.objects.filter(pk=promo.pk).update(times_redeemed=1)
        promo.refresh_from_db()
        promo.save()

        assert not LogEntry.objects.get_for_object(promo).filter(action=LogEntry.Action.UPDATE).exists()


class TestRefunds:
    def test_staff_refund_records_the_refund_and_what_it_moved(self, payment, client):
        agent = staff_member("Support", "agent")
        client.force_login(agent)
        url = reverse("admin:payments_payment_refund", args=[payment.pk])
        form = {
            "amount": "399.00",
            "reason": "requested_by_customer",
            "comment": "asked by phone",
            "access": "default",
            "request_key": str(uuid.uuid4()),
        }

        client.post(url, {**form, "confirm": "yes"})

        refund = Refund.objects.get()
        created = only_entry(AuditAction.REFUND_CREATE)
        assert about(created, refund)
        assert created.actor == agent
        assert created.changes_dict == {"status": ["None", "pending"], "amount": ["None", "39900"]}
        assert created.additional_data["reason"] == "requested_by_customer: asked by phone"
        assert created.additional_data["left_to_refund"] == [39900, 0]
        sent = only_entry(AuditAction.REFUND_SEND)
        assert about(sent, refund)
        assert sent.actor == agent
        assert sent.changes_dict["status"] == ["pending", "succeeded"]
        assert sent.changes_dict["payment.refunded_amount"] == ["0", "39900"]
        assert sent.changes_dict["payment.status"] == ["succeeded", "refunded"]
        # A full refund ends access: that is in the entry too.
        assert sent.changes_dict["subscription.status"] == ["active", "canceled"]

    def test_approval_and_rejection_are_recorded_with_their_staff_member(self, payment, settings):
        settings.REFUND_APPROVAL_THRESHOLD = 20000
        agent, lead = staff_member("Support", "agent"), staff_member("Support", "lead")
        first = refund_create(payment=payment, amount=30000, reason="duplicate", created_by=agent)

        refund_reject(refund=first, rejected_by=lead, note="not eligible")
        second = refund_create(payment=payment, amount=30000, reason="duplicate", created_by=agent)
        refund_approve(refund=second, approver=lead)

        rejected = only_entry(AuditAction.REFUND_REJECT)
        assert about(rejected, first)
        assert (rejected.actor, rejected.additional_data["reason"]) == (lead, "not eligible")
        assert rejected.changes_dict == {"status": ["awaiting_approval", "canceled"]}
        approved = only_entry(AuditAction.REFUND_APPROVE)
        assert about(approved, second)
        assert approved.actor == lead
        assert approved.changes_dict == {
            "status": ["awaiting_approval", "pending"],
            "approved_by": ["None", "lead"],
        }
        sent = only_entry(AuditAction.REFUND_SEND)
        assert (sent.actor, sent.changes_dict["payment.refunded_amount"]) == (lead, ["0", "30000"])
        assert [e.actor for e in entries(AuditAction.REFUND_CREATE)] == [agent, agent]


class TestRefundRequests:
    def open_request(self, payment: Payment) -> RefundRequest:
        return refund_request_create(
            account=payment.subscription.account, payment_id=payment.pk, reason="Twice"
        )

    def test_approval_is_recorded_on_the_request_and_the_refund(self, payment):
        request = self.open_request(payment)
        agent = staff_member("Support", "agent")

        refund = refund_request_approve(refund_request=request, staff=agent, note="goodwill")

        approved = only_entry(AuditAction.REFUND_REQUEST_APPROVE)
        assert about(approved, request)
        assert approved.actor == agent
        assert approved.additional_data["reason"] == "goodwill"
        assert approved.changes_dict == {"status": ["open", "approved"], "refund": ["None", str(refund.pk)]}
        assert about(only_entry(AuditAction.REFUND_CREATE), refund)
        assert only_entry(AuditAction.REFUND_SEND).actor == agent

    def test_rejection_is_recorded_with_the_reason_sent(self, payment):
        request = self.open_request(payment)
        agent = staff_member("Support", "agent")

        refund_request_reject(refund_request=request, staff=agent, note="Outside our policy")

        rejected = only_entry(AuditAction.REFUND_REQUEST_REJECT)
        assert about(rejected, request)
        assert (rejected.actor, rejected.additional_data["reason"]) == (agent, "Outside our policy")
        assert rejected.changes_dict == {"status": ["open", "rejected"]}


class TestGoodwill:
    def test_extension_is_recorded_with_the_old_and_new_period_end_and_the_reason(self):
        subscription = SubscriptionFactory()
        Subscription.objects.filter(pk=subscription.pk).update(
            billing_anchor=datetime(2027, 1, 10, 9, tzinfo=UTC),
            current_period_start=datetime(2027, 1, 10, 9, tzinfo=UTC),
            current_period_end=datetime(2027, 2, 10, 9, tzinfo=UTC),
        )
        agent = staff_member("Support", "agent")

        subscription_extend(subscription=subscription, days=10, actor=agent, reason="Outage on 3 March")

        entry = only_entry(AuditAction.SUBSCRIPTION_EXTEND)
        assert about(entry, subscription)
        assert entry.actor == agent
        assert entry.changes_dict == {
            "current_period_end": ["2027-02-10 09:00:00", "2027-02-20 09:00:00"],
            "billing_anchor": ["2027-01-10 09:00:00", "2027-01-20 09:00:00"],
        }
        assert entry.additional_data["reason"] == "Outage on 3 March"
        assert entry.additional_data["days"] == 10
        assert entry.additional_data["next_period_end"] == "2027-03-20T09:00:00+00:00"

    def test_refused_extension_leaves_no_entry(self):
        subscription = SubscriptionFactory(status="past_due")

        with pytest.raises(Exception, match="past due"):
            subscription_extend(subscription=subscription, days=3, actor=staff_member("Support"), reason="x")

        assert not entries(AuditAction.SUBSCRIPTION_EXTEND)


class TestReplaysAndResends:
    def test_support_replaying_an_event_in_admin_is_recorded(self, client):
        event = WebhookEvent.objects.create(
            event_id="evt_failed_1",
            type="checkout.session.completed",
            object_id="cs_test_1",
            provider_created_at=timezone.now(),
            payload={"id": "cs_test_1"},
            status=WebhookEventStatus.FAILED,
        )
        agent = staff_member("Support", "agent")
        client.force_login(agent)

        client.post(
            reverse("admin:payments_webhookevent_changelist"),
            {"action": "reprocess", "_selected_action": [event.pk]},
        )

        entry = only_entry(AuditAction.WEBHOOK_EVENT_REPROCESS)
        assert about(entry, event)
        assert entry.actor == agent
        assert entry.changes_dict == {"status": ["failed", "received"]}
        assert entry.additional_data["event_id"] == "evt_failed_1"

    def test_system_replay_is_not_audited(self):
        event = WebhookEvent.objects.create(
            event_id="evt_2",
            type="charge.refunded",
            provider_created_at=timezone.now(),
            payload={},
            status=WebhookEventStatus.FAILED,
        )

        webhook_event_reprocess(event=event)

        assert not LogEntry.objects.exists()

    def test_support_sending_an_email_again_is_recorded(self, client):
        subscription = SubscriptionFactory()
        notice = Notice.objects.create(
            kind=NoticeKind.EXPIRED,
            subscription=subscription,
            period_start=subscription.current_period_start,
            status=NoticeStatus.FAILED,
            attempts=5,
        )
        agent = staff_member("Support", "agent")
        client.force_login(agent)

        client.post(
            reverse("admin:notifications_notice_changelist"),
            {"action": "send_again", "_selected_action": [str(notice.pk)]},
        )

        entry = only_entry(AuditAction.NOTICE_RESEND)
        assert about(entry, notice)
        assert entry.actor == agent
        assert entry.changes_dict == {"status": ["failed", "pending"], "attempts": ["5", "0"]}


class TestAuditLogAdmin:
    @pytest.fixture
    def logged(self):
        """Return two staff members and their entries: a tariff edit and an extension."""
        manager, agent = staff_member("Manager", "manager"), staff_member("Support", "agent")
        tariff = TariffFactory(name="Monthly HD")
        entry = LogEntry.objects.log_create(
            tariff,
            force_log=True,
            action=LogEntry.Action.UPDATE,
            actor=manager,
            changes={"amount": ["39900", "49900"]},
        )
        subscription = SubscriptionFactory()
        subscription_extend(
            subscription=subscription, days=5, actor=agent, reason="Player broken all weekend"
        )
        return manager, agent, entry, only_entry(AuditAction.SUBSCRIPTION_EXTEND)

    def test_accounting_lists_and_filters_by_action_actor_type_and_date(self, client, logged):
        _manager, agent, tariff_entry, extension = logged
        client.force_login(staff_member("Accounting", "accountant"))

        def listed(**params: str) -> set[LogEntry]:
            response = client.get(AUDIT_LOG, params)
            assert response.status_code == 200
            return set(response.context["cl"].result_list)

        everything = listed()
        assert {tariff_entry, extension} <= everything
        assert listed(staff_action=AuditAction.SUBSCRIPTION_EXTEND.value) == {extension}
        assert tariff_entry in listed(staff_action="_model")
        assert extension not in listed(staff_action="_model")
        assert listed(actor__id__exact=str(agent.pk)) == {extension}
        tariff_type = ContentType.objects.get_for_model(Tariff)
        assert tariff_entry in listed(resource_type=str(tariff_type.pk))
        assert extension not in listed(resource_type=str(tariff_type.pk))
        # The date filter's "Today" link.
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        assert {tariff_entry, extension} <= listed(timestamp__gte=str(today))
        assert listed(timestamp__lt=str(today)) == set()
        assert listed(q="Player broken") == {extension}
        page = client.get(AUDIT_LOG).content.decode()
        assert "goodwill extension" in page
        assert "Player broken all weekend" in page

    def test_accounting_reads_an_entry_with_before_after_and_reason(self, client, logged):
        *_, extension = logged
        client.force_login(staff_member("Accounting", "accountant"))

        page = client.get(reverse("admin:auditlog_logentry_change", args=[extension.pk]))

        content = page.content.decode()
        assert page.status_code == 200
        assert "Player broken all weekend" in content
        assert "Current period end" in content
        assert 'name="_save"' not in content

    @pytest.mark.parametrize("role", ["Support", "Manager"])
    def test_support_and_managers_do_not_see_it(self, client, logged, role):
        client.force_login(staff_member(role, f"other-{role.lower()}"))

        assert client.get(AUDIT_LOG).status_code == 403
        assert "auditlog" not in client.get(reverse("admin:index")).content.decode().lower()

    def test_nobody_adds_changes_or_deletes_an_entry(self, admin_client, logged):
        *_, extension = logged
        delete = reverse("admin:auditlog_logentry_delete", args=[extension.pk])

        assert admin_client.get(reverse("admin:auditlog_logentry_add")).status_code == 403
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
        changelist = admin_client.get(AUDIT_LOG)
        assert changelist.context["has_add_permission"] is False
        assert 'value="delete_selected"' not in changelist.content.decode()
        assert LogEntry.objects.filter(pk=extension.pk).exists()
