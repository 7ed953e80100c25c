"""Celery tasks of the subscription engine: thin adapters around payments.services.renewals."""

from uuid import UUID

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.core.cache import cache

from core import clock
from payments.gateways.errors import GatewayError
from payments.services.renewals import renewal_run, renewals_due, subscriptions_expire_due

MAX_RENEWAL_RETRIES = 10
# A due subscription is queued at most once in this window, however often the job runs.
QUEUED_MARK_SECONDS = 600


@shared_task
def enqueue_due_renewals() -> int:
    """Queue one renewal task per due subscription, reading them in batches; return how many."""
    now, after, queued = clock.now(), None, 0
    while ids := renewals_due(now=now, limit=settings.BILLING_RENEWAL_BATCH_SIZE, after=after):
        for subscription_id in ids:
            if cache.add(f"renewal-queued:{subscription_id}", 1, timeout=QUEUED_MARK_SECONDS):
                renew_subscription.delay(str(subscription_id))
                queued += 1
        after = ids[-1]
    return queued


@shared_task(bind=True, acks_late=True, max_retries=MAX_RENEWAL_RETRIES)
def renew_subscription(self: Task, subscription_id: str) -> str:
    """Renew one subscription; a provider outage is retried later with the same idempotency key."""
    try:
        outcome = renewal_run(subscription_id=UUID(subscription_id))
    except GatewayError as exc:
        if not exc.retryable:
            raise
        raise self.retry(countdown=min(10 * 2**self.request.retries, 3600)) from exc
    finally:
        cache.delete(f"renewal-queued:{subscription_id}")
    return outcome.value


@shared_task
def expire_ended_subscriptions() -> int:
    """End subscriptions whose paid time and grace are over."""
    return subscriptions_expire_due(now=clock.now())
