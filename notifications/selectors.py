"""Reads of the notification machinery: what is due to be sent, and who is about to lose access."""

from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import Exists, OuterRef, Q, QuerySet

from billing.models import Subscription, SubscriptionStatus
from notifications.models import DeliveryStatus, EventDelivery, EventEndpoint, Notice, NoticeStatus

S = SubscriptionStatus


def earlier_event_undelivered() -> Exists:
    """Match deliveries held back because an earlier event of their subscription is still pending there."""
    return Exists(
        EventDelivery.objects.filter(
            endpoint_id=OuterRef("endpoint_id"),
            subscription_id=OuterRef("subscription_id"),
            sequence__lt=OuterRef("sequence"),
            status=DeliveryStatus.PENDING,
        )
    )


def deliveries_sendable(*, now: datetime, endpoints: QuerySet[EventEndpoint]) -> QuerySet[EventDelivery]:
    """Return deliveries that may be tried now: pending, due, to a receiving endpoint, and next in line.

    Held-back deliveries are left out here, not only when locking, so a long queue behind
    one failing event never fills a dispatcher's batch and starves everyone else.
    """
    return (
        EventDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(endpoint__in=endpoints)
        .exclude(earlier_event_undelivered())
    )


def deliveries_due(*, now: datetime, endpoints: QuerySet[EventEndpoint], limit: int) -> list[int]:
    """Return ids of the deliveries to try now, oldest first (event n before n+1 of a subscription)."""
    due = deliveries_sendable(now=now, endpoints=endpoints)
    return list(due.order_by("pk").values_list("pk", flat=True)[:limit])


def notices_due(*, now: datetime, limit: int) -> list[UUID]:
    """Return ids of notices waiting to be sent whose next try is due, oldest first."""
    due = Notice.objects.filter(status=NoticeStatus.PENDING, next_attempt_at__lte=now)
    return list(due.order_by("created_at").values_list("pk", flat=True)[:limit])


def subscriptions_ending_soon(*, now: datetime, within: timedelta) -> QuerySet[Subscription]:
    """Return running subscriptions whose period ends within `within` and will not simply renew.

    That is every trial (the viewer is told it ends, and whether it will be charged), and
    paid subscriptions with autopay off or canceled at the period end.
    """
    return (
        Subscription.objects.filter(
            status__in=(S.ACTIVE, S.TRIALING),
            current_period_end__gt=now,
            current_period_end__lte=now + within,
        )
        .filter(Q(status=S.TRIALING) | Q(autopay=False) | Q(cancel_at_period_end=True))
        .select_related("account", "tariff")
        .order_by("pk")
    )
