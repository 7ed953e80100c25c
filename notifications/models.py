"""What we tell viewers (notices, sent by email) and the cinema's services (events, by webhook).

Both are written in the transaction of the change they describe, so a rolled-back change
leaves neither, and both are sent afterwards by a worker from these rows, so a broker that is
down at commit time delays them but loses nothing.
"""

import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.fields import CreatedAtField, UpdatedAtField


class NoticeKind(models.TextChoices):
    PAYMENT_SUCCEEDED = "payment_succeeded", _("payment succeeded (receipt)")
    RENEWAL_FAILED = "renewal_failed", _("renewal failed")
    AUTHENTICATION_REQUIRED = "authentication_required", _("authentication needed")
    REFUND_ISSUED = "refund_issued", _("refund issued")
    REFUND_REQUEST_REJECTED = "refund_request_rejected", _("refund request rejected")
    EXPIRING_SOON = "expiring_soon", _("subscription expiring soon")
    TRIAL_ENDING = "trial_ending", _("trial ending soon")
    EXPIRED = "expired", _("subscription expired")
    # The saved card expires before the next renewal (payment method, issue 14).
    CARD_EXPIRING = "card_expiring", _("card expiring before the renewal")
    # The viewer's plan changed (an upgrade now, or a downgrade taken at the renewal).
    SUBSCRIPTION_CHANGED = "subscription_changed", _("plan changed")


class NoticeStatus(models.TextChoices):
    PENDING = "pending", _("waiting to be sent")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed (no more tries)")
    SKIPPED = "skipped", _("not sent")


class Notice(models.Model):
    """One email to a viewer about one subscription, recorded once whatever the retries.

    The same notice (kind, subscription, period and reference) can be recorded only once:
    the database refuses a second row, however many jobs try at the same time.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=32, choices=NoticeKind.choices)
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        related_name="notices",
        verbose_name=_("subscription"),
    )
    # The billing period the notice is about (the paid, failed, ending or ended period).
    period_start = models.DateTimeField(_("period start"))
    # Tells apart notices of one kind within one period: the decline number, the refund.
    reference = models.CharField(_("reference"), max_length=64, blank=True, default="")
    payment = models.ForeignKey(
        "payments.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notices",
        verbose_name=_("payment"),
    )
    # The facts as they were when the notice was recorded (tariff, amounts, dates, card);
    # the email is rendered from them when it is sent.
    context = models.JSONField(_("facts"), default=dict)
    status = models.CharField(
        _("status"), max_length=16, choices=NoticeStatus.choices, default=NoticeStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    # What was (last) sent, kept for support to read.
    to_email = models.EmailField(_("sent to"), blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body_text = models.TextField(_("text"), blank=True)
    body_html = models.TextField(_("HTML"), blank=True)
    created_at = CreatedAtField(_("created"), db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-created_at"]
        permissions = [("resend_notice", _("Can send notices again"))]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subscription", "period_start", "reference"], name="notice_once_per_period"
            ),
            models.CheckConstraint(condition=Q(kind__in=NoticeKind.values), name="notice_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=NoticeStatus.values), name="notice_status_valid"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="notice_due_idx"),
            models.Index(fields=["subscription", "-created_at"], name="notice_subscription_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.get_status_display()}"


class EventType(models.TextChoices):
    ACCESS_GRANTED = "access.granted", "access.granted"
    ACCESS_REVOKED = "access.revoked", "access.revoked"
    PAYMENT_SUCCEEDED = "payment.succeeded", "payment.succeeded"
    PAYMENT_FAILED = "payment.failed", "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded", "payment.refunded"
    SUBSCRIPTION_RENEWED = "subscription.renewed", "subscription.renewed"
    SUBSCRIPTION_CANCELED = "subscription.canceled", "subscription.canceled"
    SUBSCRIPTION_EXPIRED = "subscription.expired", "subscription.expired"
    SUBSCRIPTION_EXTENDED = "subscription.extended", "subscription.extended"
    SUBSCRIPTION_CHANGED = "subscription.changed", "subscription.changed"


class OutboxEvent(models.Model):
    """One event about a subscription, numbered in the order the changes happened.

    Written in the transaction of the change (the transactional outbox), with the next
    sequence number of its subscription taken under the subscription's row lock.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(_("type"), max_length=64, choices=EventType.choices)
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("subscription"),
    )
    user_id = models.CharField(_("cinema user id"), max_length=128)
    sequence = models.PositiveIntegerField(_("sequence in the subscription"))
    payload = models.JSONField(_("data"))
    # Billing time (core.clock), like every date inside the payload.
    occurred_at = models.DateTimeField(_("occurred at"))

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "sequence"], name="event_sequence_per_subscription"
            ),
            models.CheckConstraint(condition=Q(type__in=EventType.values), name="event_type_valid"),
        ]
        indexes = [
            models.Index(fields=["-occurred_at"], name="event_occurred_idx"),
            models.Index(fields=["user_id", "-occurred_at"], name="event_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.sequence}"


def new_endpoint_secret() -> str:
    """Return a fresh signing secret for an endpoint."""
    return f"whsec_{secrets.token_hex(24)}"


class EndpointSource(models.TextChoices):
    ADMIN = "admin", _("admin")
    ENVIRONMENT = "environment", _("environment (EVENT_ENDPOINTS)")


class EventEndpoint(models.Model):
    """A URL of one of the cinema's services that receives events of some types."""

    name = models.CharField(_("name"), max_length=120, blank=True)
    url = models.URLField(_("URL"), max_length=2048)
    secret = models.CharField(
        _("signing secret"),
        max_length=255,
        default=new_endpoint_secret,
        help_text=_("The receiver verifies the Billing-Signature header with it."),
    )
    # Empty: every type.
    event_types = models.JSONField(_("event types"), default=list, blank=True)
    active = models.BooleanField(_("active"), default=True)
    source = models.CharField(
        _("configured in"), max_length=16, choices=EndpointSource.choices, default=EndpointSource.ADMIN
    )
    created_at = CreatedAtField(_("created"))
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("event endpoint")
        verbose_name_plural = _("event endpoints")
        ordering = ["name", "url"]
        constraints = [
            models.UniqueConstraint(
                fields=["url"], condition=Q(source="environment"), name="endpoint_url_once_from_environment"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.url

    def wants(self, event_type: str) -> bool:
        """Return whether this endpoint is subscribed to events of this type."""
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")


class EventDelivery(models.Model):
    """One event on its way to one endpoint: tried until the endpoint answers 2xx.

    The subscription and sequence are copied from the event so the dispatcher can hold
    back event n+1 to an endpoint until n is delivered there.
    """

    event = models.ForeignKey(
        OutboxEvent, on_delete=models.PROTECT, related_name="deliveries", verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        EventEndpoint, on_delete=models.PROTECT, related_name="deliveries", verbose_name=_("endpoint")
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("subscription"),
    )
    sequence = models.PositiveIntegerField(_("sequence in the subscription"))
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"))
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = CreatedAtField(_("created"))

    class Meta:
        verbose_name = _("event delivery")
        verbose_name_plural = _("event deliveries")
        ordering = ["-id"]
        permissions = [("redeliver_eventdelivery", _("Can redeliver events"))]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once_per_endpoint"),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due_idx"),
            # The ordering rule: is an earlier event of this subscription still pending here?
            models.Index(fields=["endpoint", "subscription", "sequence"], name="delivery_order_idx"),
            # Retention: the delivered ones, oldest first (notifications/services/retention.py).
            models.Index(
                fields=["created_at"], condition=Q(status="delivered"), name="delivery_delivered_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"
