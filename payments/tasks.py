"""Celery tasks of the payments app: thin adapters around services, owning retries."""

from celery import shared_task
from celery.app.task import Task
from django.conf import settings

from payments.gateways import configured_providers
from payments.models import Refund, RefundStatus
from payments.services import reconciliation
from payments.services.refunds.provider_answers import refund_send
from payments.services.webhooks import EventProcessingFailed, webhook_event_process

MAX_EVENT_RETRIES = 8


@shared_task(bind=True, max_retries=MAX_EVENT_RETRIES, acks_late=True)
def process_webhook_event(self: Task, event_pk: int) -> None:
    """Handle one stored provider event; retry transient failures with exponential backoff."""
    try:
        webhook_event_process(event_pk=event_pk)
    except EventProcessingFailed as exc:
        if exc.retryable and self.request.retries < MAX_EVENT_RETRIES:
            raise self.retry(countdown=min(5 * 2**self.request.retries, 600)) from exc


@shared_task(acks_late=True)
def send_refund(refund_pk: str) -> str:
    """Send one pending refund to its provider (key `refund:<id>`); a second run replays the first."""
    refund = Refund.objects.select_related("payment").get(pk=refund_pk)
    if refund.status != RefundStatus.PENDING or refund.provider_refund_id:
        return refund.status
    return refund_send(refund=refund).status


@shared_task
def reconcile_pending_payments(provider: str | None = None) -> dict[str, str]:
    """Settle payments pending longer than RECONCILIATION_PENDING_AFTER by asking their provider.

    Runs for the provider named, else for every configured provider; returns each run's status.
    """
    return {
        name: reconciliation.reconcile_pending_payments(
            older_than=settings.RECONCILIATION_PENDING_AFTER, provider=name
        ).status
        for name in _providers(provider)
    }


@shared_task
def reconcile_unbooked_charges(provider: str | None = None) -> dict[str, str]:
    """Book the providers' charges of the last UNBOOKED_CHARGES_LOOKBACK that our rows missed."""
    return {
        name: reconciliation.reconcile_unbooked_charges(provider=name).status for name in _providers(provider)
    }


@shared_task
def reconcile_events(provider: str | None = None) -> dict[str, str]:
    """Feed the providers' events we never received to the webhook handlers."""
    return {name: reconciliation.reconcile_events(provider=name).status for name in _providers(provider)}


def _providers(provider: str | None) -> list[str]:
    # One provider's runs never wait for another's: each has its own lease and cursor.
    return [provider] if provider else list(configured_providers())
