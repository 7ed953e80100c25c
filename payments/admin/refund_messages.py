"""What staff are told once a refund they asked for has been written and sent (refund form, cancellation)."""

from django.contrib import messages
from django.utils.translation import gettext as _

from core.money import format_money
from payments.models import Provider, Refund, RefundStatus


def refund_outcome_message(refund: Refund) -> tuple[int, str]:
    """Return the message level and text that say where a refund stands now."""
    level = {
        RefundStatus.SUCCEEDED: messages.SUCCESS,
        RefundStatus.FAILED: messages.ERROR,
    }.get(RefundStatus(refund.status), messages.INFO)
    text = {
        RefundStatus.AWAITING_APPROVAL: _("Refund of %(money)s waits for another staff member's approval."),
        RefundStatus.PENDING: _("Refund of %(money)s is pending at %(provider)s; its event will settle it."),
        RefundStatus.SUCCEEDED: _("Refunded %(money)s."),
        RefundStatus.FAILED: _("%(provider)s refused the refund of %(money)s: %(why)s"),
    }.get(RefundStatus(refund.status), _("Refund of %(money)s: %(why)s"))
    values = {
        "money": format_money(refund.amount, refund.currency),
        "provider": Provider(refund.provider).label,
        "why": refund.failure_reason,
    }
    return level, text % values
