"""Settling a card-update page: save the card once, start or charge nothing, retry a past-due renewal.

Called by `checkout_sync` (payments/services/checkout/settle.py) under its locks (account,
subscription, checkout), whether the webhook or the return page gets there first. Kept apart
from payment_method.py, which opens the page, because settling must not import the page code.
"""

import logging

from billing.models import Subscription, SubscriptionStatus
from billing.services import subscription_mark_past_due
from core import clock
from core.queueing import enqueue_on_commit
from payments.gateways.base import CardInfo
from payments.models import CheckoutSession, CheckoutStatus, Payment, PaymentKind
from payments.services.customers import payment_method_save

logger = logging.getLogger(__name__)

# The decline a renewal records when the bank wants the card holder present: the viewer
# confirms that renewal on its own page, and an off-session retry would send the key of that
# attempt again (a recorded decline is what moves the renewal's key on).
AUTHENTICATION_REQUIRED = "authentication_required"


def card_update_apply(
    *, checkout: CheckoutSession, subscription: Subscription, card: CardInfo | None
) -> None:
    """Apply a completed card-update page to its rows, locked by the caller (account, subscription, checkout).

    Only the first settlement of the page saves its card: the webhook and the return page
    both get here, in either order, and a late repeat of an older page must not put back the
    card a newer page replaced. Nothing is started, charged or extended here; a past-due
    subscription is retried at once with the new card (after commit).
    """
    if checkout.status == CheckoutStatus.COMPLETE:
        return
    checkout.status = CheckoutStatus.COMPLETE
    checkout.save(update_fields=["status", "updated_at"])
    if card is None:
        logger.warning("card-update checkout %s completed without a saved card", checkout.pk)
        return
    # Saved whatever the autopay setting: the viewer asked for this card to be the one on file.
    payment_method_save(account=subscription.account, provider=checkout.provider, card=card)
    _retry_past_due_now(subscription)


def _retry_past_due_now(subscription: Subscription) -> None:
    """Make a past-due subscription's renewal due now and queue it once the new card is committed."""
    if subscription.status != SubscriptionStatus.PAST_DUE:
        return
    failed = (
        Payment.objects.select_for_update()
        .filter(
            subscription=subscription, kind=PaymentKind.RENEWAL, period_start=subscription.current_period_end
        )
        .first()
    )
    if failed is not None and failed.failure_code == AUTHENTICATION_REQUIRED:
        # That renewal waits on its own page for the bank's confirmation (the emailed link).
        return
    subscription_mark_past_due(subscription=subscription, retry_at=clock.now())
    # Imported here: the task module imports the renewal services, which import this app's checkout.
    from billing.tasks import renew_subscription

    enqueue_on_commit(
        renew_subscription, str(subscription.pk), fallback="the every-minute renewal job retries it"
    )
