"""Retention: old handled provider events and old reconciliation runs go, in batches; money never does."""

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.roles import staff_member
from core import clock
from core.audit import AuditAction
from payments.models import (
    Payment,
    ReconciliationCursor,
    ReconciliationKind,
    ReconciliationRun,
    ReconciliationRunStatus,
    Refund,
    RefundStatus,
    WebhookEvent,
    WebhookEventStatus,
)
from payments.services.retention import (
    payments_retention_run,
    reconciliation_runs_prune,
    webhook_events_prune,
)
from payments.services.webhooks import webhook_event_reprocess
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db
E = WebhookEventStatus
R = ReconciliationRunStatus


def days_ago(days: float):
    return clock.now() - timedelta(days=days)


def event(status: str, *, age_days: float, event_id: str = "") -> WebhookEvent:
    event_id = event_id or f"evt_{status}_{age_days}_{WebhookEvent.objects.count()}"
    return WebhookEvent.objects.create(
        event_id=event_id,
        type="payment_intent.succeeded",
        provider_created_at=days_ago(age_days),
        payload={},
        status=status,
        received_at=days_ago(age_days),
    )


def run(status: str = R.OK, *, age_days: float, kind: str = ReconciliationKind.PENDING_PAYMENTS):
    return ReconciliationRun.objects.create(kind=kind, status=status, started_at=days_ago(age_days))


def left(model) -> set:
    return set(model.objects.values_list("pk", flat=True))


class TestWebhookEvents:
    def test_handled_events_older_than_the_period_go_and_the_rest_stay(self):
        old_processed = event(E.PROCESSED, age_days=91)
        old_ignored = event(E.IGNORED, age_days=200)
        young_processed = event(E.PROCESSED, age_days=89)
        waiting = event(E.RECEIVED, age_days=300)
        failed = event(E.FAILED, age_days=300)

        assert webhook_events_prune(before=days_ago(90), batch_size=100) == 2

        assert left(WebhookEvent) == {young_processed.pk, waiting.pk, failed.pk}
        assert not WebhookEvent.objects.filter(pk__in=[old_processed.pk, old_ignored.pk]).exists()

    def test_batches_repeat_until_every_old_event_is_gone(self):
        for _ in range(7):
            event(E.PROCESSED, age_days=100)
        kept = event(E.FAILED, age_days=100)

        with CaptureQueriesContext(connection) as queries:
            assert webhook_events_prune(before=days_ago(90), batch_size=3) == 7

        deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
        assert len(deletes) == 3  # 3 + 3 + 1 rows, one transaction each
        assert left(WebhookEvent) == {kept.pk}

    def test_the_audit_log_of_a_replayed_event_outlives_the_event(self):
        replayed = event(E.FAILED, age_days=120, event_id="evt_replayed")
        webhook_event_reprocess(event=replayed, actor=staff_member("Support"), reason="stuck")
        WebhookEvent.objects.filter(pk=replayed.pk).update(status=E.PROCESSED)

        webhook_events_prune(before=days_ago(90), batch_size=100)

        assert not WebhookEvent.objects.filter(pk=replayed.pk).exists()
        entry = LogEntry.objects.get(additional_data__action=AuditAction.WEBHOOK_EVENT_REPROCESS.value)
        assert entry.additional_data["event_id"] == "evt_replayed"


class TestReconciliationRuns:
    def test_ended_runs_older_than_the_period_go_but_the_last_of_each_job_stays(self):
        old = [run(R.OK, age_days=100), run(R.FAILED, age_days=99), run(R.SKIPPED, age_days=98)]
        last_of_its_kind = run(R.OK, age_days=97)
        other_job_last = run(R.OK, age_days=150, kind=ReconciliationKind.EVENTS)
        young = run(R.OK, age_days=1, kind=ReconciliationKind.UNBOOKED_CHARGES)

        assert reconciliation_runs_prune(before=days_ago(90), batch_size=100) == 3

        assert left(ReconciliationRun) == {last_of_its_kind.pk, other_job_last.pk, young.pk}
        assert not ReconciliationRun.objects.filter(pk__in=[r.pk for r in old]).exists()

    def test_a_running_run_and_a_run_holding_a_cursor_stay(self):
        running = run(R.RUNNING, age_days=100)
        holding = run(R.OK, age_days=100, kind=ReconciliationKind.EVENTS)
        cursor = ReconciliationCursor.objects.create(
            kind=ReconciliationKind.EVENTS, locked_by=holding, locked_until=clock.now()
        )
        run(R.OK, age_days=1)
        run(R.OK, age_days=1, kind=ReconciliationKind.EVENTS)

        assert reconciliation_runs_prune(before=days_ago(90), batch_size=100) == 0

        assert {running.pk, holding.pk} <= left(ReconciliationRun)
        cursor.refresh_from_db()
        assert cursor.locked_by_id == holding.pk


class TestRetentionRun:
    def test_money_rows_stay_however_old(self, settings):
        settings.RETENTION_WEBHOOK_EVENTS_DAYS = 1
        settings.RETENTION_RECONCILIATION_RUNS_DAYS = 1
        payment = PaymentFactory()
        refund = Refund.objects.create(
            payment=payment, amount=1000, currency=payment.currency, status=RefundStatus.SUCCEEDED
        )
        Payment.objects.filter(pk=payment.pk).update(created_at=days_ago(1000), paid_at=days_ago(1000))
        Refund.objects.filter(pk=refund.pk).update(created_at=days_ago(1000))
        event(E.PROCESSED, age_days=1000)

        pruned = payments_retention_run(now=clock.now())

        assert pruned == {"webhook_events": 1, "reconciliation_runs": 0}
        assert left(Payment) == {payment.pk}
        assert left(Refund) == {refund.pk}

    def test_a_period_of_zero_keeps_everything(self, settings):
        settings.RETENTION_WEBHOOK_EVENTS_DAYS = 0
        settings.RETENTION_RECONCILIATION_RUNS_DAYS = 0
        kept = event(E.PROCESSED, age_days=5000)
        run(R.OK, age_days=5000)
        run(R.OK, age_days=4000)

        assert payments_retention_run(now=clock.now()) == {}

        assert WebhookEvent.objects.filter(pk=kept.pk).exists()
        assert ReconciliationRun.objects.count() == 2

    def test_the_defaults_keep_ninety_days(self):
        kept, gone = event(E.PROCESSED, age_days=89), event(E.PROCESSED, age_days=91)

        assert payments_retention_run(now=clock.now())["webhook_events"] == 1

        assert left(WebhookEvent) == {kept.pk}
        assert gone.pk not in left(WebhookEvent)
