"""The audit log of staff actions that change money or access, kept in django-auditlog's table.

Two writers share one table, so one admin page lists everything:
- tariffs and promo codes are logged automatically by auditlog's registry (see
  `tariffs.apps`), with the staff member taken from the request by its middleware;
- the services behind staff actions (refunds, approvals, goodwill extensions, event replays,
  notices sent again) call `audit_entry_create` inside their own transaction, so an entry
  exists exactly when the change commits, whoever the caller (admin, shell, a future API).

Each entry holds who (`actor`), when (`timestamp`), what (the object, and `additional_data`
with the action's name, the reason and any context) and the values that moved, as
`changes = {field: [before, after]}`, written as text the way auditlog writes its own, so its
admin shows both kinds alike.
"""

from datetime import UTC, datetime
from typing import Any

from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction
from django.utils.encoding import smart_str
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    """Names of the staff actions services record (`additional_data["action"]`)."""

    REFUND_CREATE = "refund.create", _("refund created")
    REFUND_SEND = "refund.send", _("refund sent to the provider")
    REFUND_APPROVE = "refund.approve", _("refund approved")
    REFUND_REJECT = "refund.reject", _("refund rejected")
    # Not a staff action: a charge the provider took for something we could no longer give.
    REFUND_AUTOMATIC = "refund.automatic", _("charge without a home refunded automatically")
    REFUND_REQUEST_APPROVE = "refund_request.approve", _("refund request approved")
    REFUND_REQUEST_REJECT = "refund_request.reject", _("refund request rejected")
    SUBSCRIPTION_EXTEND = "subscription.extend", _("goodwill extension")
    SUBSCRIPTION_CANCEL = "subscription.cancel", _("subscription canceled by support")
    SUBSCRIPTION_CHANGE = "subscription.change", _("plan changed")
    WEBHOOK_EVENT_REPROCESS = "webhook_event.reprocess", _("provider event processed again")
    NOTICE_RESEND = "notice.resend", _("email sent again")


Changes = dict[str, tuple[Any, Any]]


def audit_value(value: Any) -> str:
    """Return a value as auditlog stores it: text, instants as naive UTC ("2027-03-01 09:00:00")."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        # auditlog's admin reads stored instants as UTC and shows them in TIME_ZONE.
        value = value.astimezone(UTC).replace(tzinfo=None)
    return smart_str(value)


def audit_changes(before: dict[str, Any], after: dict[str, Any]) -> Changes:
    """Return the fields whose value differs between two snapshots, as {field: (before, after)}."""
    return {field: (before.get(field), value) for field, value in after.items() if before.get(field) != value}


def audit_entry_create(
    *,
    actor: AbstractBaseUser | AnonymousUser,
    action: AuditAction,
    target: models.Model,
    changes: Changes,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> LogEntry:
    """Record one staff action on `target` in the caller's transaction.

    `changes` maps each field that moved to its (before, after) values; `details` adds context
    (ids, amounts) next to the action's name and the reason in `additional_data`.
    """
    if not transaction.get_connection().in_atomic_block:
        # An entry must commit or roll back with the change it describes.
        raise RuntimeError("audit_entry_create must run inside the transaction of the change")
    user = actor if isinstance(actor, AbstractBaseUser) else None
    entry: LogEntry = LogEntry.objects.log_create(
        target,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        actor=user,
        actor_email=getattr(user, "email", None) or None,
        changes={field: [audit_value(old), audit_value(new)] for field, (old, new) in changes.items()},
        additional_data={
            "action": action.value,
            "reason": reason,
            **(details or {}),
        },
    )
    return entry
