"""Checkout: open the provider's checkout page for a pending subscription, and apply its outcome.

The flow is written so that no retry, race or lost answer can open two pages or charge twice:
1. `checkout_prepare` writes the payment and checkout rows (in the caller's transaction);
2. `checkout_open` calls the checkout's provider under the checkout row's lock with the
   checkout id as the idempotency key, so a retry after a timeout gets the same page back;
3. `checkout_sync` re-reads the page from its provider and applies it; it is the only path
   from a checkout to an active subscription, used by webhooks and by the result page alike.
"""

from payments.services.checkout.pages import (
    REUSE_MARGIN,
    STATUS_RESYNC_SECONDS,
    CheckoutReplaced,
    checkout_abandon,
    checkout_idempotency_key,
    checkout_is_reusable,
    checkout_open,
    checkout_prepare,
    checkout_prepare_for_payment,
    checkout_status,
)
from payments.services.checkout.settle import (
    checkout_sync,
    payment_mark_succeeded,
    payment_settle_from_intent,
    renewal_payment_has_home,
)

__all__ = [
    "REUSE_MARGIN",
    "STATUS_RESYNC_SECONDS",
    "CheckoutReplaced",
    "checkout_abandon",
    "checkout_idempotency_key",
    "checkout_is_reusable",
    "checkout_open",
    "checkout_prepare",
    "checkout_prepare_for_payment",
    "checkout_status",
    "checkout_sync",
    "payment_mark_succeeded",
    "payment_settle_from_intent",
    "renewal_payment_has_home",
]
