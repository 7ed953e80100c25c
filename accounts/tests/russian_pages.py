"""The back-office pages a Russian reader must find wholly in Russian, with something on each.

Shared by the completeness test (`test_i18n.py`, Django's test client) and the browser test
(`tests/e2e/test_russian_admin.py`).
"""

from dataclasses import dataclass
from typing import cast

from auditlog.models import LogEntry
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.models import Subscription
from billing.services import subscription_extend
from billing.tests.factories import SubscriptionFactory
from core.audit import AuditAction, audit_entry_create
from notifications.models import OutboxEvent
from payments.models import Payment, RefundReason
from payments.services.unhomed import UNHOMED_COMMENT
from payments.tests.factories import PaymentFactory
from tariffs.models import Tariff
from tariffs.tests.factories import TariffFactory

NBSP = "\u00a0"
# What the tariff costs, as Russian pages must write it.
PRICE_IN_RUSSIAN = f"3{NBSP}990,00{NBSP}₽"


@dataclass
class BackOffice:
    """What was written, and the pages that show it: {what the page is: its URL}."""

    subscription: Subscription
    pages: dict[str, str]


def back_office_with_history(*, staff: User) -> BackOffice:
    """Write a tariff edit, a goodwill extension and two refunds' entries; return the pages to read."""
    tariff = cast(Tariff, TariffFactory(name="Кино HD", amount=399000))
    tariff.description = "Все фильмы и сериалы в HD."  # noqa: RUF001 - Russian
    tariff.save()  # a second, automatic entry: an edit in admin
    subscription = cast(Subscription, SubscriptionFactory(tariff=tariff))
    payment = cast(Payment, PaymentFactory(subscription=subscription))
    with transaction.atomic():
        subscription_extend(
            subscription=subscription,
            days=3,
            actor=staff,
            reason="Не работал плеер",  # noqa: RUF001 - Russian
            expected_period_end=subscription.current_period_end,
        )
        audit_entry_create(
            actor=staff,
            action=AuditAction.REFUND_CREATE,
            target=payment,
            changes={"refunded_amount": (0, 100000)},
            reason=f"{RefundReason.DUPLICATE.value}: списали дважды",
            details={"payment": str(payment.pk), "currency": "RUB", "left_to_refund": [399000, 299000]},
        )
        audit_entry_create(
            actor=AnonymousUser(),
            action=AuditAction.REFUND_AUTOMATIC,
            target=payment,
            changes={"refunded_amount": (100000, 399000)},
            reason=UNHOMED_COMMENT,
            details={"payment": str(payment.pk), "currency": "RUB", "end_access": True},
        )
    today = timezone.localdate()
    audit_log = reverse("admin:auditlog_logentry_changelist")
    pages = {
        "audit log": audit_log,
        "audit log, this month by day": f"{audit_log}?timestamp__year={today.year}&timestamp__month={today.month}",
        "audit log, filtered": f"{audit_log}?staff_action={AuditAction.SUBSCRIPTION_EXTEND.value}",
        **{
            f"audit entry {entry.pk}": reverse("admin:auditlog_logentry_change", args=[entry.pk])
            for entry in LogEntry.objects.order_by("pk")
        },
        "extension form": reverse("admin:billing_subscription_extend", args=[subscription.pk]),
        "subscription": reverse("admin:billing_subscription_change", args=[subscription.pk]),
        "outbox": reverse("admin:notifications_outboxevent_changelist"),
        **{
            f"outbox event {event.type}": reverse("admin:notifications_outboxevent_change", args=[event.pk])
            for event in OutboxEvent.objects.filter(subscription=subscription)
        },
    }
    return BackOffice(subscription=subscription, pages=pages)
