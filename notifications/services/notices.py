"""Emails to viewers: recorded once in the transaction of the change, sent afterwards with retries.

- `notice_record` inserts the notice in the caller's transaction; the database's uniqueness
  rule (kind, subscription, period, reference) makes a second record of the same notice a
  no-op, however many jobs try at once.
- `notice_send` sends one notice under its row lock (`SKIP LOCKED`): two senders never send
  it both. A failure is recorded and retried with backoff until NOTICE_MAX_ATTEMPTS, then
  the notice is marked failed for support to send again from admin.
- A dispatcher (beat, nudged after each commit) sends whatever is due, so a broker that is
  down at commit time only delays the email.
"""

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives
from django.db import transaction

from billing.models import Subscription, SubscriptionStatus
from core import clock
from core.audit import AuditAction, audit_changes, audit_entry_create
from core.inserts import insert_or_ignore
from core.queueing import nudge
from notifications.emails import notice_render
from notifications.models import Notice, NoticeKind, NoticeStatus
from notifications.payloads import iso
from notifications.selectors import notices_due, subscriptions_ending_soon
from payments.models import Payment, PaymentStatus
from payments.selectors import provider_customer_get, subscription_provider
from payments.services.action_links import action_link_url

logger = logging.getLogger(__name__)
S = SubscriptionStatus
K = NoticeKind

# Tries wait 1, 2, 4, … minutes, up to six hours between tries.
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)
DISPATCH_BATCH = 200


def notice_record(
    *,
    kind: str,
    subscription: Subscription,
    period_start: datetime,
    context: dict[str, Any],
    payment: Payment | None = None,
    reference: str = "",
) -> bool:
    """Record a notice to send once the caller's transaction commits; return False if it already exists."""
    notice = Notice(
        kind=kind,
        subscription=subscription,
        period_start=period_start,
        reference=reference,
        payment=payment,
        context=context,
        next_attempt_at=clock.now(),
    )
    # One statement, no savepoint: every renewal records a receipt.
    if not insert_or_ignore(notice, conflict_fields=("kind", "subscription", "period_start", "reference")):
        return False
    transaction.on_commit(_nudge_dispatcher, robust=True)
    return True


def _nudge_dispatcher() -> None:
    from notifications.tasks import dispatch_notices

    nudge(dispatch_notices)


def ending_facts(subscription: Subscription) -> dict[str, Any]:
    """Return the facts of an ending-soon notice: what ends when, and what happens then."""
    account = subscription.account
    # The card the renewal will charge: the one saved at the provider renewals go through.
    card = provider_customer_get(
        account_id=account.pk, provider=subscription_provider(subscription=subscription)
    )
    return {
        "tariff_name": subscription.tariff.name_for(account.language),
        "amount": subscription.amount,
        "currency": subscription.currency,
        "period_end": iso(subscription.current_period_end),
        "autopay": subscription.autopay,
        "canceled": subscription.cancel_at_period_end,
        "will_renew": subscription.autopay and not subscription.cancel_at_period_end,
        "card_brand": card.card_brand if card is not None else "",
        "card_last4": card.card_last4 if card is not None else "",
    }


def notices_record_upcoming(*, now: datetime) -> int:
    """Record the expiring-soon and trial-ending notices due by billing time `now`; return how many are new.

    Safe to run any number of times, also at once: each subscription's notice for its
    current period can be recorded only once.
    """
    within = timedelta(days=settings.NOTICE_EXPIRING_SOON_DAYS)
    recorded = 0
    for subscription in subscriptions_ending_soon(now=now, within=within).iterator():
        if subscription.current_period_start is None:
            continue
        recorded += notice_record(
            kind=K.TRIAL_ENDING if subscription.status == S.TRIALING else K.EXPIRING_SOON,
            subscription=subscription,
            period_start=subscription.current_period_start,
            # One per period end: a goodwill extension moves the end, and the viewer is told
            # again of the new one.
            reference=iso(subscription.current_period_end) or "",
            context=ending_facts(subscription),
        )
    return recorded


def _no_longer_true(notice: Notice) -> str:
    """Return why a notice should not be sent any more (its news is stale), or ""."""
    subscription, payment = notice.subscription, notice.payment
    same_period = subscription.current_period_start == notice.period_start
    if notice.kind == K.EXPIRING_SOON:
        ending = not subscription.autopay or subscription.cancel_at_period_end
        if not (subscription.status in (S.ACTIVE, S.TRIALING) and same_period and ending):
            return "the subscription renews after all, or has already changed"
    if notice.kind == K.TRIAL_ENDING and not (subscription.status == S.TRIALING and same_period):
        return "the trial is already over"
    if notice.kind in (K.EXPIRING_SOON, K.TRIAL_ENDING) and notice.context.get("period_end") != iso(
        subscription.current_period_end
    ):
        return "the period end has moved since (a goodwill extension)"
    if notice.kind in (K.RENEWAL_FAILED, K.AUTHENTICATION_REQUIRED) and payment is not None:
        if payment.status != PaymentStatus.FAILED:
            return "the renewal was paid since"
        if notice.kind == K.RENEWAL_FAILED and str(payment.failed_attempts) != notice.reference:
            return "the renewal was tried again since"
    return ""


def _facts_known_at_send(notice: Notice) -> dict[str, Any]:
    """Return the facts an email gets at send time: the link where the viewer confirms a payment.

    It is our durable link (payments/services/action_links.py), not a provider's page: it
    opens a fresh page whenever it is followed, until the renewal is paid or given up, which
    is at the latest when access ends (`access_until`, the end of the grace period).
    """
    if notice.kind != K.AUTHENTICATION_REQUIRED or notice.payment is None:
        return {}
    return {
        "action_url": action_link_url(payment_id=notice.payment.pk),
        "action_expires_at": notice.context.get("access_until"),
    }


def backoff(attempts: int) -> timedelta:
    """Return the wait after the `attempts`-th failed try."""
    return min(BACKOFF_FIRST * 2 ** min(attempts - 1, 20), BACKOFF_MAX)


def notice_send(*, notice_id: UUID, now: datetime | None = None) -> str | None:
    """Send one due notice, unless another worker holds it; return its new status (None: not tried)."""
    now = now or clock.now()
    with transaction.atomic():
        notice = (
            Notice.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription__account", "subscription__tariff", "payment")
            .filter(pk=notice_id, status=NoticeStatus.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if notice is None:
            return None
        account = notice.subscription.account
        if stale := _no_longer_true(notice):
            notice.status, notice.last_error = NoticeStatus.SKIPPED, f"Not sent: {stale}."
        elif not account.email:
            notice.status, notice.last_error = (
                NoticeStatus.SKIPPED,
                "Not sent: the account has no email address.",
            )
        else:
            _send(notice, to=account.email, language=account.language, now=now)
        notice.save()
    return notice.status


def _send(notice: Notice, *, to: str, language: str, now: datetime) -> None:
    notice.attempts += 1
    try:
        email = notice_render(notice, language=language, extra=_facts_known_at_send(notice))
        notice.to_email, notice.language = to, email.language
        notice.subject, notice.body_text, notice.body_html = email.subject[:255], email.text, email.html
        message = EmailMultiAlternatives(
            subject=email.subject,
            body=email.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[to],
            headers={"X-Billing-Notice": str(notice.pk), "X-Billing-Notice-Kind": notice.kind},
        )
        message.attach_alternative(email.html, "text/html")
        message.send()
    except Exception as exc:
        logger.warning("notice %s (%s) could not be sent", notice.pk, notice.kind, exc_info=True)
        notice.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if notice.attempts >= settings.NOTICE_MAX_ATTEMPTS:
            notice.status = NoticeStatus.FAILED
        else:
            notice.next_attempt_at = now + backoff(notice.attempts)
        return
    notice.status, notice.last_error, notice.sent_at = NoticeStatus.SENT, "", clock.now()


def notices_dispatch(*, now: datetime | None = None) -> int:
    """Send every due notice once; return how many were sent."""
    sent = 0
    for notice_id in notices_due(now=now or clock.now(), limit=DISPATCH_BATCH):
        sent += notice_send(notice_id=notice_id, now=now) == NoticeStatus.SENT
    return sent


@transaction.atomic
def notice_resend(*, notice: Notice, actor: User | None = None, reason: str = "") -> None:
    """Send a notice again, whatever became of it (support's action in admin): a fresh round of tries.

    A staff member's resend (`actor`) is recorded in the audit log with what it reset.
    """
    locked = Notice.objects.select_for_update().get(pk=notice.pk)
    before = {"status": locked.status, "attempts": locked.attempts}
    Notice.objects.filter(pk=notice.pk).update(
        status=NoticeStatus.PENDING, attempts=0, next_attempt_at=clock.now(), last_error=""
    )
    if actor is not None:
        audit_entry_create(
            actor=actor,
            action=AuditAction.NOTICE_RESEND,
            target=locked,
            changes=audit_changes(before, {"status": NoticeStatus.PENDING, "attempts": 0}),
            reason=reason,
            details={"kind": locked.kind, "subscription": str(locked.subscription_id), "to": locked.to_email},
        )
    transaction.on_commit(_nudge_dispatcher, robust=True)
