"""Money that moves: payments and refunds, as we record them next to the provider's."""

import uuid
from datetime import UTC

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import TruncDay, TruncMonth
from django.utils.translation import gettext_lazy as _

from core.fields import CreatedAtField, UpdatedAtField
from core.money import CURRENCY_CODE_REGEX, format_money


class PaymentKind(models.TextChoices):
    INITIAL = "initial", _("initial")
    RENEWAL = "renewal", _("renewal")
    # The prorated charge of an upgrade taken mid-period (billing's plan change).
    CHANGE = "change", _("plan change")


class Provider(models.TextChoices):
    """The payment provider a row belongs to; its own ids are in the `provider_*` columns."""

    STRIPE = "stripe", "Stripe"
    YOOKASSA = "yookassa", "YooKassa"


class ReceiptRegistration(models.TextChoices):
    """Where a payment's 54-FZ fiscal receipt stands at YooKassa (`receipt_registration`)."""

    PENDING = "pending", _("being registered")
    SUCCEEDED = "succeeded", _("registered")
    CANCELED = "canceled", _("failed to register")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    CANCELED = "canceled", _("canceled")
    REFUNDED = "refunded", _("refunded")
    PARTIALLY_REFUNDED = "partially_refunded", _("partially refunded")


# A payment in one of these took the viewer's money (whatever was refunded since): revenue,
# reconciliation against the provider's charges and the revenue indexes below all count these.
PAID_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


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
    # Derived from what is being paid (never random): the key the provider sees on every
    # money-moving call for this payment, so a retry can never charge twice.
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, unique=True)
    provider = models.CharField(
        _("provider"), max_length=16, choices=Provider.choices, default=Provider.STRIPE, editable=False
    )
    # The provider's own ids (unique per provider, see Meta: the id leads each constraint's
    # index, so a lookup by id alone uses it): its checkout page, its payment, and the charge
    # that took the money.
    provider_checkout_id = models.CharField(
        _("checkout page id at the provider"), max_length=255, null=True, blank=True
    )
    provider_payment_id = models.CharField(
        _("payment id at the provider"), max_length=255, null=True, blank=True
    )
    provider_charge_id = models.CharField(
        _("charge id at the provider"), max_length=255, null=True, blank=True, db_index=True
    )
    # The card as the provider reports it (brand and last four digits only, never the number).
    card_brand = models.CharField(_("card brand"), max_length=32, blank=True)
    card_last4 = models.CharField(_("card last 4"), max_length=4, blank=True)
    # Off-session charges tried for this payment that were declined; each retry uses a new
    # idempotency key (a provider replays a stored decline for the same key).
    failed_attempts = models.PositiveSmallIntegerField(_("declined attempts"), default=0)
    failure_code = models.CharField(_("failure code"), max_length=64, blank=True)
    failure_message = models.TextField(_("failure message"), blank=True)
    # The fiscal receipt YooKassa registers with the payment (54-FZ), as it last reported it;
    # empty for providers that register none. A failed one is listed for accounting.
    receipt_registration = models.CharField(
        _("fiscal receipt"), max_length=16, choices=ReceiptRegistration.choices, blank=True
    )
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    created_at = CreatedAtField(_("created"), db_index=True)
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        # Accounting's reading of the payments as a whole, beyond looking at single rows.
        permissions = [
            ("export_payment", _("Can export payments")),
            ("view_dashboard", _("Can view the accounting dashboard")),
            ("view_reconciliation_report", _("Can view the daily reconciliation report")),
        ]
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
            models.UniqueConstraint(
                fields=["provider_checkout_id", "provider"], name="payment_provider_checkout_unique"
            ),
            models.UniqueConstraint(
                fields=["provider_payment_id", "provider"], name="payment_provider_payment_unique"
            ),
            # One renewal payment per subscription and period: a renewal can never be
            # created, let alone charged, twice.
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(kind="renewal"),
                name="one_renewal_payment_per_period",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="payment_status_created_idx"),
            models.Index(fields=["subscription", "-created_at"], name="payment_subscription_idx"),
            # Admin filters: by currency and by the day paid, newest first.
            models.Index(fields=["currency", "-created_at"], name="payment_currency_created_idx"),
            models.Index(fields=["paid_at"], name="payment_paid_at_idx"),
            # The dashboard's revenue (payments.dashboard.selectors, PAID_STATUSES above): paid
            # payments grouped by UTC day and month. Each index hands the rows over already in
            # group order with every column the query reads (paid_at too: PostgreSQL reads an
            # expression's column for an index-only scan), so it neither sorts nor reads the table.
            models.Index(
                TruncDay("paid_at", tzinfo=UTC),
                F("currency"),
                F("amount"),
                F("refunded_amount"),
                F("paid_at"),
                condition=Q(status__in=list(PAID_STATUSES)),
                name="payment_revenue_day_idx",
            ),
            models.Index(
                TruncMonth("paid_at", tzinfo=UTC),
                F("currency"),
                F("amount"),
                F("refunded_amount"),
                F("paid_at"),
                condition=Q(status__in=list(PAID_STATUSES)),
                name="payment_revenue_month_idx",
            ),
            # The dashboard's dunning recovery: the few renewals ever declined, by UTC month due.
            models.Index(
                TruncMonth("period_start", tzinfo=UTC),
                F("status"),
                F("subscription_id"),
                F("period_start"),
                condition=Q(kind="renewal", failed_attempts__gt=0),
                name="payment_declined_renewal_idx",
            ),
            # The few receipts still being registered (the reconciliation asks again) or that
            # failed to register (accounting's list): never a scan of every payment.
            models.Index(
                fields=["receipt_registration", "paid_at"],
                condition=Q(receipt_registration__in=["pending", "canceled"]),
                name="payment_receipt_unsettled_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{format_money(self.amount, self.currency)} · {self.get_status_display()}"

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.refunded_amount


class RefundStatus(models.TextChoices):
    # Above REFUND_APPROVAL_THRESHOLD: nothing is sent to the provider until a second staff member approves.
    AWAITING_APPROVAL = "awaiting_approval", _("awaiting approval")
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
        _("status"), max_length=24, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    reason = models.CharField(
        _("reason"), max_length=32, choices=RefundReason.choices, default=RefundReason.OTHER
    )
    comment = models.TextField(_("comment"), blank=True)
    provider = models.CharField(
        _("provider"), max_length=16, choices=Provider.choices, default=Provider.STRIPE, editable=False
    )
    provider_refund_id = models.CharField(
        _("refund id at the provider"), max_length=255, null=True, blank=True
    )
    failure_reason = models.CharField(_("failure reason"), max_length=255, blank=True)
    # When the money went back: a refund above the approval threshold succeeds days after it
    # was asked for, and accounting dates refunds by this (reports, dashboard, exports).
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True, db_index=True)
    # Whether the subscription ends once this refund has succeeded (chosen by staff).
    end_access = models.BooleanField(_("ends access"), default=False)
    # The one-time token of the admin form that asked for this refund: submitting the same
    # form twice finds this row again instead of refunding twice. Empty for the provider's own.
    request_key = models.UUIDField(_("form token"), null=True, blank=True, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    created_at = CreatedAtField(_("created"), db_index=True)
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        permissions = [
            ("approve_refund", _("Can approve refunds above the approval threshold")),
            ("export_refund", _("Can export refunds")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=RefundStatus.values), name="refund_status_valid"),
            models.UniqueConstraint(
                fields=["provider_refund_id", "provider"], name="refund_provider_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_CODE_REGEX), name="refund_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return f"{format_money(self.amount, self.currency)} · {self.get_status_display()}"


class RefundRequestStatus(models.TextChoices):
    OPEN = "open", _("open")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")


class RefundRequest(models.Model):
    """A viewer's request to get a payment back, decided by support in admin."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refund_requests", verbose_name=_("payment")
    )
    account = models.ForeignKey(
        "accounts.BillingAccount",
        on_delete=models.PROTECT,
        related_name="refund_requests",
        verbose_name=_("account"),
    )
    reason = models.TextField(_("viewer's reason"))
    status = models.CharField(
        _("status"), max_length=16, choices=RefundRequestStatus.choices, default=RefundRequestStatus.OPEN
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decision_note = models.TextField(_("decision note"), blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    # The refund an approval started.
    refund = models.OneToOneField(
        Refund,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refund_request",
        verbose_name=_("refund"),
    )
    created_at = CreatedAtField(_("created"), db_index=True)

    class Meta:
        verbose_name = _("refund request")
        verbose_name_plural = _("refund requests")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RefundRequestStatus.values), name="refund_request_status_valid"
            ),
            # One open request per payment: a viewer asking twice gets a 409, even at once.
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(status="open"),
                name="one_open_refund_request_per_payment",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="refund_request_status_idx")]

    def __str__(self) -> str:
        return f"{self.payment_id} · {self.get_status_display()}"


class CheckoutMode(models.TextChoices):
    PAYMENT = "payment", _("payment")
    SETUP = "setup", _("save a card (no charge)")
    # A viewer replacing the card of a subscription that has already started: saves a card,
    # charges nothing and starts nothing.
    CARD_UPDATE = "card_update", _("replace the saved card")


class CheckoutStatus(models.TextChoices):
    OPEN = "open", _("open")
    COMPLETE = "complete", _("complete")
    EXPIRED = "expired", _("expired")


class CheckoutSession(models.Model):
    """A provider's hosted checkout page opened for a subscription.

    In payment mode it collects one payment; in setup mode (trials) it saves a card without
    a charge. Its id is the idempotency key of the call that creates the page, so a
    retried request can never open a second page.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        related_name="checkout_sessions",
        verbose_name=_("subscription"),
    )
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="checkout_sessions",
        verbose_name=_("payment"),
    )
    mode = models.CharField(_("mode"), max_length=16, choices=CheckoutMode.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=CheckoutStatus.choices, default=CheckoutStatus.OPEN
    )
    provider = models.CharField(
        _("provider"), max_length=16, choices=Provider.choices, default=Provider.STRIPE, editable=False
    )
    # Empty until the provider has answered: the row is written first, then the page is opened.
    provider_session_id = models.CharField(
        _("checkout page id at the provider"), max_length=255, null=True, blank=True
    )
    url = models.URLField(_("checkout URL"), max_length=2048, blank=True)
    expires_at = models.DateTimeField(_("expires at"))
    created_at = CreatedAtField(_("created"))
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("checkout session")
        verbose_name_plural = _("checkout sessions")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CheckoutStatus.values), name="checkout_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=[CheckoutMode.SETUP, CheckoutMode.CARD_UPDATE], payment__isnull=True)
                | Q(mode=CheckoutMode.PAYMENT, payment__isnull=False),
                name="checkout_payment_iff_payment_mode",
            ),
            models.UniqueConstraint(
                fields=["provider_session_id", "provider"], name="checkout_provider_session_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.provider_session_id or str(self.id)


class WebhookEventStatus(models.TextChoices):
    RECEIVED = "received", _("received")
    PROCESSED = "processed", _("processed")
    IGNORED = "ignored", _("ignored (type not handled)")
    FAILED = "failed", _("failed")


class WebhookEventSource(models.TextChoices):
    WEBHOOK = "webhook", _("webhook")
    RECONCILIATION = "reconciliation", _("reconciliation")


class WebhookEvent(models.Model):
    """One provider event, stored once by its id whatever the number of deliveries."""

    provider = models.CharField(
        _("provider"), max_length=16, choices=Provider.choices, default=Provider.STRIPE, editable=False
    )
    event_id = models.CharField(_("event id at the provider"), max_length=255)
    type = models.CharField(_("type"), max_length=128, db_index=True)
    object_id = models.CharField(_("object id"), max_length=255, blank=True, db_index=True)
    provider_created_at = models.DateTimeField(_("created at the provider"))
    # The object the event is about, as the provider sent it: its ids, amounts, statuses, card
    # brand and last four. Read again through the provider's package, never by the domain.
    payload = models.JSONField(_("payload"))
    source = models.CharField(
        _("source"),
        max_length=16,
        choices=WebhookEventSource.choices,
        default=WebhookEventSource.WEBHOOK,
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=WebhookEventStatus.choices,
        default=WebhookEventStatus.RECEIVED,
    )
    attempts = models.PositiveIntegerField(_("processing attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    received_at = CreatedAtField(_("received"), db_index=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("provider event")
        verbose_name_plural = _("provider events")
        ordering = ["-received_at"]
        permissions = [("reprocess_webhookevent", _("Can reprocess provider events"))]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "provider"], name="webhook_event_provider_id_unique"),
            models.CheckConstraint(
                condition=Q(status__in=WebhookEventStatus.values), name="webhook_event_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="webhook_event_status_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class ReconciliationKind(models.TextChoices):
    PENDING_PAYMENTS = "pending_payments", _("pending payments")
    EVENTS = "events", _("missed provider events")
    UNBOOKED_CHARGES = "unbooked_charges", _("charges our books missed")


class ReconciliationRunStatus(models.TextChoices):
    RUNNING = "running", _("running")
    OK = "ok", _("ok")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped (another run was in progress)")


class ReconciliationRun(models.Model):
    """One pass of a reconciliation job and what it put right."""

    kind = models.CharField(_("kind"), max_length=32, choices=ReconciliationKind.choices)
    provider = models.CharField(
        _("provider"), max_length=16, choices=Provider.choices, default=Provider.STRIPE, editable=False
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=ReconciliationRunStatus.choices,
        default=ReconciliationRunStatus.RUNNING,
    )
    started_at = CreatedAtField(_("started"), db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Payments or checkouts asked about (pending payments), or events read from the provider (events).
    examined = models.PositiveIntegerField(_("examined"), default=0)
    # Payments or checkouts whose state changed, or events we had missed and fed to the handlers.
    fixed = models.PositiveIntegerField(_("fixed"), default=0)
    error = models.TextField(_("error"), blank=True)
    # What changed: [{"payment", "checkout", "subscription", "changes": {what: [before, after]}}]
    # or [{"event", "type", "status"}]; the list is capped, `fixed` counts them all.
    fixes = models.JSONField(_("what was fixed"), default=list, blank=True)

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ReconciliationKind.values), name="reconciliation_run_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ReconciliationRunStatus.values),
                name="reconciliation_run_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["kind", "-started_at"], name="reconciliation_run_kind_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.started_at:%Y-%m-%d %H:%M} · {self.get_status_display()}"


class ReconciliationCursor(models.Model):
    """Where one reconciliation job stands, and which run holds it now (one row per kind and provider).

    The lease (`locked_by`, `locked_until`) is taken with one conditional UPDATE, which works
    alike on PostgreSQL and SQLite and needs no transaction held open over calls to a provider; a
    run that dies leaves a lease that simply runs out.
    """

    kind = models.CharField(_("kind"), max_length=32, choices=ReconciliationKind.choices)
    provider = models.CharField(
        _("provider"), max_length=16, choices=Provider.choices, default=Provider.STRIPE, editable=False
    )
    # The newest provider event seen so far (events only): the next run reads on from there.
    last_event_id = models.CharField(_("last event id at the provider"), max_length=255, blank=True)
    last_event_created_at = models.DateTimeField(
        _("last event created at the provider"), null=True, blank=True
    )
    locked_by = models.ForeignKey(
        ReconciliationRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("held by run"),
    )
    locked_until = models.DateTimeField(_("held until"), null=True, blank=True)
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("reconciliation cursor")
        verbose_name_plural = _("reconciliation cursors")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ReconciliationKind.values), name="reconciliation_cursor_kind_valid"
            ),
            models.UniqueConstraint(
                fields=["kind", "provider"], name="reconciliation_cursor_kind_provider_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.last_event_id or '-'}"


class ProviderCustomer(models.Model):
    """A billing account's customer at one provider, and the payment method saved there.

    One row per account and provider, made the first time the account pays through that
    provider. Renewals charge the saved method off-session at the provider of their payment;
    the card is kept only as far as the provider lets us show it (never the number). Written
    under the account's lock (the first step of the lock order, docs/architecture.md).
    """

    account = models.ForeignKey(
        "accounts.BillingAccount",
        on_delete=models.PROTECT,
        related_name="provider_customers",
        verbose_name=_("billing account"),
    )
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices, editable=False)
    # Empty for a provider that keeps no customers (the saved method is then all there is).
    customer_ref = models.CharField(_("customer id at the provider"), max_length=255, blank=True)
    # The method renewals charge off-session: the provider's id and what it lets us show of it.
    payment_method_ref = models.CharField(
        _("saved payment method (id at the provider)"), max_length=255, blank=True
    )
    card_brand = models.CharField(_("card brand"), max_length=32, blank=True)
    card_last4 = models.CharField(_("card last 4"), max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(_("card expiry month"), null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(_("card expiry year"), null=True, blank=True)
    created_at = CreatedAtField(_("created"))
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("customer at a provider")
        verbose_name_plural = _("customers at providers")
        constraints = [
            models.UniqueConstraint(fields=["account", "provider"], name="provider_customer_account_unique"),
            # The id leads the index, so support's search by a customer id uses it.
            models.UniqueConstraint(
                fields=["customer_ref", "provider"],
                condition=~Q(customer_ref=""),
                name="provider_customer_ref_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.customer_ref or '-'}"
