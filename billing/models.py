"""The subscription engine's state: one row per subscription of a billing account."""

import uuid
from datetime import UTC

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.fields import CreatedAtField, UpdatedAtField
from core.money import CURRENCY_CODE_REGEX


class SubscriptionStatus(models.TextChoices):
    PENDING = "pending", _("pending payment")
    TRIALING = "trialing", _("trialing")
    # A context of its own: "active" alone is also the yes/no field of tariffs and promo codes.
    ACTIVE = "active", pgettext_lazy("subscription status", "active")
    PAST_DUE = "past_due", _("past due")
    CANCELED = "canceled", _("canceled")
    EXPIRED = "expired", _("expired")


# A live subscription is one that is not over yet; an account has at most one.
LIVE_STATUSES = (
    SubscriptionStatus.PENDING,
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
)
# Statuses that are inside a paid (or trial) period, so the period must be known.
PERIOD_STATUSES = (
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
)


class Subscription(models.Model):
    """A billing account's subscription to a tariff, at the price locked at signup.

    Status changes go through `billing.services`, which refuse invalid transitions.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        "accounts.BillingAccount",
        on_delete=models.PROTECT,
        related_name="subscriptions",
        verbose_name=_("account"),
    )
    tariff = models.ForeignKey(
        "tariffs.Tariff",
        on_delete=models.PROTECT,
        related_name="subscriptions",
        verbose_name=_("tariff"),
    )
    # The price is copied at signup: a tariff's later price change never reaches it.
    amount = models.PositiveBigIntegerField(_("price (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.PENDING,
    )
    autopay = models.BooleanField(_("autopay"), default=True)
    cancel_at_period_end = models.BooleanField(_("cancel at period end"), default=False)
    # Periods are counted from this instant, so month ends stay anchored (31 Jan → 29 Feb
    # → 31 Mar) instead of drifting to the shortest month's day.
    billing_anchor = models.DateTimeField(_("billing anchor"), null=True, blank=True)
    current_period_start = models.DateTimeField(_("current period start"), null=True, blank=True)
    current_period_end = models.DateTimeField(_("current period end"), null=True, blank=True)
    # Set when a trial starts: an account gets one trial, ever.
    trial_end = models.DateTimeField(_("trial end"), null=True, blank=True)
    # The provider's fingerprint of the card saved when the trial started: one trial per card,
    # whichever account it is saved on.
    trial_card_fingerprint = models.CharField(
        _("trial card fingerprint"), max_length=64, blank=True, db_index=True
    )
    # Dunning: when the renewal that failed is tried again (None: no retry is planned).
    next_renewal_attempt_at = models.DateTimeField(_("next renewal attempt"), null=True, blank=True)
    canceled_at = models.DateTimeField(_("canceled at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    # A downgrade the viewer asked for: it takes effect at the period end, when the renewal
    # switches to this tariff and charges its price (billing/plan_change.py).
    scheduled_tariff = models.ForeignKey(
        "tariffs.Tariff",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tariff from the next period"),
    )
    created_at = CreatedAtField(_("created"))
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at"]
        permissions = [
            ("extend_subscription", _("Can extend a subscription as goodwill")),
            ("cancel_subscription", _("Can cancel a subscription for a viewer")),
            ("change_subscription_plan", _("Can change a subscription's plan for a viewer")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=LIVE_STATUSES),
                name="one_live_subscription_per_account",
                violation_error_message=_("The account already has a live subscription."),
            ),
            models.CheckConstraint(
                condition=Q(status__in=SubscriptionStatus.values),
                name="subscription_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_CODE_REGEX),
                name="subscription_currency_iso",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=PERIOD_STATUSES)
                | Q(
                    current_period_start__isnull=False,
                    current_period_end__gt=models.F("current_period_start"),
                ),
                name="subscription_period_set_when_running",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "current_period_end"], name="subscription_due_idx"),
            models.Index(
                fields=["next_renewal_attempt_at"],
                condition=Q(status="past_due"),
                name="subscription_retry_due_idx",
            ),
            models.Index(fields=["account", "-created_at"], name="subscription_account_idx"),
            # The admin lists subscriptions newest first.
            models.Index(fields=["-created_at"], name="subscription_created_idx"),
            # Admin filters, each read newest first.
            models.Index(fields=["status", "-created_at"], name="subscription_status_idx"),
            models.Index(fields=["tariff", "-created_at"], name="subscription_tariff_idx"),
            models.Index(fields=["currency", "-created_at"], name="subscription_currency_idx"),
            # The dashboard (payments.dashboard.selectors): MRR and subscriber counts from the
            # index alone; new subscriptions by UTC month created; churn by the day they ended.
            models.Index(F("status"), F("currency"), F("tariff"), F("amount"), name="subscription_mrr_idx"),
            models.Index(
                TruncMonth("created_at", tzinfo=UTC),
                F("created_at"),
                condition=Q(billing_anchor__isnull=False),
                name="subscription_started_idx",
            ),
            models.Index(
                fields=["ended_at"], condition=Q(ended_at__isnull=False), name="subscription_ended_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} · {self.tariff.name} · {self.get_status_display()}"


class IdempotentRequest(models.Model):
    """The answer given to a viewer's request sent with an `Idempotency-Key` header.

    The same key again gets the same answer and changes nothing; the same key with other
    parameters is refused.
    """

    account = models.ForeignKey(
        "accounts.BillingAccount", on_delete=models.CASCADE, related_name="idempotent_requests"
    )
    key = models.CharField(_("idempotency key"), max_length=255)
    # A hash of the operation and its parameters, so a reused key with other input is caught.
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    # Empty while the first request with this key is still running (or failed): the key is
    # bound to its parameters before the operation starts.
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.JSONField(_("response body"), null=True, blank=True)
    created_at = CreatedAtField(_("created"))

    class Meta:
        verbose_name = _("idempotent request")
        verbose_name_plural = _("idempotent requests")
        constraints = [
            models.UniqueConstraint(fields=["account", "key"], name="idempotency_key_unique_per_account"),
        ]

    def __str__(self) -> str:
        return self.key


class PlanChangeStatus(models.TextChoices):
    # Its prorated charge is not paid yet (declined, awaiting the bank's confirmation, in flight).
    PENDING = "pending", _("awaiting payment")
    APPLIED = "applied", _("applied")
    # The subscription moved on (renewed, canceled, changed otherwise) before it was paid.
    ABANDONED = "abandoned", _("abandoned")


class PlanChange(models.Model):
    """An upgrade taken mid-period, from one tariff to another, for one period of a subscription.

    Its `key` derives from what is changed (subscription, from-tariff, to-tariff and the start
    of the period it applies to): it is the idempotency key of the prorated charge's payment, so
    a retried or double-clicked request finds this row again and the provider charges once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="plan_changes", verbose_name=_("subscription")
    )
    from_tariff = models.ForeignKey(
        "tariffs.Tariff", on_delete=models.PROTECT, related_name="+", verbose_name=_("from tariff")
    )
    to_tariff = models.ForeignKey(
        "tariffs.Tariff", on_delete=models.PROTECT, related_name="+", verbose_name=_("to tariff")
    )
    # The start of the period the change was asked in: a change applies only to that period.
    period_start = models.DateTimeField(_("period start"))
    key = models.CharField(_("idempotency key"), max_length=255, unique=True)
    amount_due = models.PositiveBigIntegerField(_("amount due (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=16, choices=PlanChangeStatus.choices, default=PlanChangeStatus.PENDING
    )
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    created_at = CreatedAtField(_("created"))
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("plan change")
        verbose_name_plural = _("plan changes")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=PlanChangeStatus.values), name="plan_change_status_valid"
            ),
            models.CheckConstraint(condition=~Q(from_tariff=F("to_tariff")), name="plan_change_other_tariff"),
        ]

    def __str__(self) -> str:
        return self.key
