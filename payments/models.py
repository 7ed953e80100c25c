"""Money that moves: payments and refunds, as we record them next to Stripe's."""

import uuid

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from billing.money import CURRENCY_CODE_REGEX, format_money


class PaymentKind(models.TextChoices):
    INITIAL = "initial", _("initial")
    RENEWAL = "renewal", _("renewal")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    CANCELED = "canceled", _("canceled")
    REFUNDED = "refunded", _("refunded")
    PARTIALLY_REFUNDED = "partially_refunded", _("partially refunded")


class Payment(models.Model):
    """One attempt to collect one period's price of a subscription."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("subscription"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=PaymentKind.choices)
    amount = models.PositiveBigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    refunded_amount = models.PositiveBigIntegerField(_("refunded (minor units)"), default=0)
    # The period this payment pays for.
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    # Derived from what is being paid (never random): the key Stripe sees on every
    # money-moving call for this payment, so a retry can never charge twice.
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, unique=True)
    stripe_checkout_session_id = models.CharField(
        _("Stripe Checkout Session id"), max_length=255, null=True, blank=True, unique=True
    )
    stripe_payment_intent_id = models.CharField(
        _("Stripe PaymentIntent id"), max_length=255, null=True, blank=True, unique=True
    )
    stripe_charge_id = models.CharField(
        _("Stripe charge id"), max_length=255, null=True, blank=True, db_index=True
    )
    failure_code = models.CharField(_("failure code"), max_length=64, blank=True)
    failure_message = models.TextField(_("failure message"), blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=F("amount")),
                name="payment_refunded_not_above_amount",
            ),
            models.CheckConstraint(condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"),
            models.CheckConstraint(condition=Q(kind__in=PaymentKind.values), name="payment_kind_valid"),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_CODE_REGEX), name="payment_currency_iso"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="payment_status_created_idx"),
            models.Index(fields=["subscription", "-created_at"], name="payment_subscription_idx"),
        ]

    def __str__(self) -> str:
        return f"{format_money(self.amount, self.currency)} · {self.get_status_display()}"

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.refunded_amount


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    CANCELED = "canceled", _("canceled")


class RefundReason(models.TextChoices):
    REQUESTED_BY_CUSTOMER = "requested_by_customer", _("requested by the viewer")
    DUPLICATE = "duplicate", _("duplicate payment")
    FRAUDULENT = "fraudulent", _("fraudulent")
    SERVICE_PROBLEM = "service_problem", _("problem with the service")
    GOODWILL = "goodwill", _("goodwill")
    OTHER = "other", _("other")


class Refund(models.Model):
    """Money returned to the viewer from one payment, in full or in part."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    amount = models.PositiveBigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    reason = models.CharField(
        _("reason"), max_length=32, choices=RefundReason.choices, default=RefundReason.OTHER
    )
    comment = models.TextField(_("comment"), blank=True)
    stripe_refund_id = models.CharField(
        _("Stripe refund id"), max_length=255, null=True, blank=True, unique=True
    )
    failure_reason = models.CharField(_("failure reason"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=RefundStatus.values), name="refund_status_valid"),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_CODE_REGEX), name="refund_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return f"{format_money(self.amount, self.currency)} · {self.get_status_display()}"
