from rest_framework import serializers

from core.validation import StrictInputSerializer
from payments.models import CheckoutSession, Payment, Refund, RefundRequest, RefundRequestStatus, RefundStatus


class PaymentRefundSerializer(serializers.ModelSerializer):
    """A refund as its viewer may see it: how much, in what currency, where it stands, when.

    Viewer-safe by choice: the id, amount, currency, status and dates. Never shown: who asked for
    or approved it (`created_by`, `approved_by`), staff's comment, the reason staff picked (it
    may say `fraudulent`), whether it ends access, the provider's ids and failure text, and the
    admin form's token. A refund awaiting a second staff member's approval is simply `pending`
    to the viewer: the approval step is support's business.
    """

    amount = serializers.IntegerField(help_text="In minor units.")
    status = serializers.SerializerMethodField(help_text="`pending`, `succeeded`, `failed` or `canceled`.")

    class Meta:
        model = Refund
        fields = ["id", "amount", "currency", "status", "created_at", "succeeded_at"]

    def get_status(self, refund: Refund) -> str:
        if refund.status == RefundStatus.AWAITING_APPROVAL:
            return RefundStatus.PENDING.value
        return str(refund.status)


class RefundOutputSerializer(PaymentRefundSerializer):
    """One of the viewer's refunds in `GET /refunds/`: a payment's refund, with that payment's id."""

    payment = serializers.UUIDField(source="payment_id", read_only=True)

    class Meta(PaymentRefundSerializer.Meta):
        fields = ["id", "payment", "amount", "currency", "status", "created_at", "succeeded_at"]


class RefundRequestListOutputSerializer(serializers.ModelSerializer):
    """One of the viewer's refund requests in `GET /refund-requests/`, and what became of it.

    Viewer-safe by choice: the viewer's own reason, the status, the dates, the payment it is
    about (id, amount, currency) and the refund an approval started. `decision_note` is shown
    only for a rejection, where support writes it for the viewer (and emails it); an
    approval's note is support's own and never shown. Who decided (`decided_by`) never is.
    """

    payment = serializers.UUIDField(source="payment_id", read_only=True)
    payment_amount = serializers.IntegerField(source="payment.amount", help_text="In minor units.")
    currency = serializers.CharField(source="payment.currency")
    status = serializers.CharField(help_text="`open`, `approved` or `rejected`.")
    decision_note = serializers.SerializerMethodField(
        help_text="Why support refused the request; empty unless `rejected`."
    )
    refund = PaymentRefundSerializer(
        allow_null=True, read_only=True, help_text="The refund an approval started; null until approved."
    )

    class Meta:
        model = RefundRequest
        fields = [
            "id",
            "payment",
            "payment_amount",
            "currency",
            "reason",
            "status",
            "created_at",
            "decided_at",
            "decision_note",
            "refund",
        ]

    def get_decision_note(self, refund_request: RefundRequest) -> str:
        if refund_request.status == RefundRequestStatus.REJECTED:
            return refund_request.decision_note
        return ""


class PaymentOutputSerializer(serializers.ModelSerializer):
    subscription = serializers.UUIDField(source="subscription_id", read_only=True)
    amount = serializers.IntegerField(help_text="In minor units.")
    refunded_amount = serializers.IntegerField(help_text="In minor units.")
    # Prefetched by the payment selectors (one query for a whole page of payments).
    refunds = PaymentRefundSerializer(many=True, read_only=True, help_text="Newest first.")
    provider = serializers.CharField(
        read_only=True, help_text="Who took the payment: `stripe` or `yookassa`."
    )
    receipt_status = serializers.CharField(
        source="receipt_registration",
        read_only=True,
        help_text=(
            "The 54-FZ fiscal receipt YooKassa registers with the payment: `pending`, `succeeded` or "
            "`canceled` (failed to register); empty for providers that register none."
        ),
    )

    class Meta:
        model = Payment
        fields = [
            "id",
            "subscription",
            "kind",
            "status",
            "provider",
            "receipt_status",
            "amount",
            "currency",
            "refunded_amount",
            "period_start",
            "period_end",
            "failure_code",
            "failure_message",
            "paid_at",
            "created_at",
            "refunds",
        ]


class CheckoutStatusOutputSerializer(serializers.ModelSerializer):
    status = serializers.CharField(help_text="`open`, `complete` or `expired`.")
    payment_status = serializers.CharField(source="payment.status", allow_null=True, default=None)
    subscription_status = serializers.CharField(source="subscription.status")
    failure_code = serializers.CharField(source="payment.failure_code", default="")
    failure_message = serializers.CharField(source="payment.failure_message", default="")

    class Meta:
        model = CheckoutSession
        fields = ["id", "status", "payment_status", "subscription_status", "failure_code", "failure_message"]


class RefundRequestInputSerializer(StrictInputSerializer):
    # Only the reason: the amount is never the viewer's to choose.
    reason = serializers.CharField(max_length=2000, help_text="Why the viewer wants the payment back.")


class RefundRequestOutputSerializer(serializers.ModelSerializer):
    payment = serializers.UUIDField(source="payment_id", read_only=True)
    status = serializers.CharField(help_text="`open`, `approved` or `rejected`.")

    class Meta:
        model = RefundRequest
        fields = ["id", "payment", "reason", "status", "created_at"]


class PaymentMethodOutputSerializer(serializers.Serializer):
    """The card renewals charge, as far as its provider lets us show it (never the number)."""

    provider = serializers.CharField(help_text="The payment provider the card is saved at, e.g. `stripe`.")
    brand = serializers.CharField(source="card_brand", help_text="As the provider names it, e.g. `visa`.")
    last4 = serializers.CharField(source="card_last4")
    exp_month = serializers.IntegerField(source="card_exp_month", allow_null=True, help_text="1-12.")
    exp_year = serializers.IntegerField(source="card_exp_year", allow_null=True, help_text="Four digits.")


class PaymentMethodUpdateOutputSerializer(serializers.Serializer):
    checkout_url = serializers.URLField(
        source="url", help_text="The provider's page where the viewer saves a new card; nothing is charged."
    )
