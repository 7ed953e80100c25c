"""The audit log reads as text for people, in the reader's language: fields by name, reasons by label."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.urls import reverse
from django.utils import translation

from billing.admin_audit import reason_display
from core.audit import AuditAction, audit_entry_create
from payments.services.unhomed import UNHOMED_COMMENT
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db
AUDIT_LOG = reverse("admin:auditlog_logentry_changelist")


def test_a_refund_reason_code_reads_as_its_label_in_each_language():
    with translation.override("en"):
        assert reason_display("duplicate: charged twice") == "duplicate payment: charged twice"
        assert reason_display("goodwill") == "goodwill"
        assert reason_display("Player broken: all weekend") == "Player broken: all weekend"  # staff's words
    with translation.override("ru"):
        assert reason_display("duplicate: списали дважды") == "повторный платёж: списали дважды"
        assert reason_display(UNHOMED_COMMENT).startswith("Автоматически: ")


def test_the_list_summarises_changes_by_field_name_and_the_system_by_name(admin_client):
    payment = PaymentFactory()
    with transaction.atomic():
        audit_entry_create(
            actor=AnonymousUser(),
            action=AuditAction.REFUND_AUTOMATIC,
            target=payment,
            changes={"refunded_amount": (0, 39900), "status": ("succeeded", "refunded")},
            reason=UNHOMED_COMMENT,
        )

    english = admin_client.get(AUDIT_LOG).content.decode()
    summary = re.search(r'field-msg_short">([^<]*)<', english)
    assert summary is not None
    assert summary.group(1) in (
        "2 fields changed: refunded (minor units), status",
        "2 fields changed: status, refunded (minor units)",
    )
    assert "system" in english
    admin_client.post(reverse("set_language"), {"language": "ru", "next": AUDIT_LOG})
    russian = admin_client.get(AUDIT_LOG).content.decode()
    assert "2 поля изменены: " in russian
    assert "система" in russian
    assert "changes:" not in russian and "fields changed" not in russian
