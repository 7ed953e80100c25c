"""Card checks: the hold a provider places to save a card without a charge, and its release.

YooKassa saves a card (a trial, a card update) by holding 1.00 RUB with a two-stage payment
(`capture: false`); Stripe saves it with a SetupIntent and holds nothing
(`PaymentGateway.card_check_holds_funds`). A hold is money the viewer cannot spend, so it is
released as soon as its page has settled: `checkout_sync` releases it after applying the page,
and the pending-payments reconciliation releases any left open (a release the provider did not
answer, a process that died in between) while the provider still holds it. Every release of
one checkout's hold carries the key `card-check-release:<checkout id>`, so two of them are one
at the provider. A hold is never captured.
"""

import logging
from datetime import timedelta
from uuid import UUID

from payments.gateways import get_gateway
from payments.gateways.base import CheckoutSession as ProviderCheckout
from payments.gateways.errors import GatewayError

logger = logging.getLogger(__name__)

# YooKassa keeps a card payment on hold for at most 7 days, then cancels it by itself.
HOLD_LIFETIME = timedelta(days=7)


def card_check_release_key(checkout_id: UUID) -> str:
    """Return the idempotency key of the call that releases a checkout's card check."""
    return f"card-check-release:{checkout_id}"


def card_check_held(*, provider: str, session: ProviderCheckout) -> str | None:
    """Return the id of the hold a settled card-saving page still has open at `provider`, or None.

    Asks the provider only for providers that hold funds, and only for a page that got as far
    as a hold; the hold's current status decides (it may have been released already).
    """
    gateway = get_gateway(provider)
    if not gateway.card_check_holds_funds or not session.setup_intent_id:
        return None
    hold = gateway.retrieve_payment(session.setup_intent_id)
    return hold.id if hold.status == "requires_capture" else None


def card_check_release(*, checkout_id: UUID, provider: str, hold_id: str) -> bool:
    """Release a card check's hold at its provider; return False if the provider did not answer.

    A failure leaves the hold to the pending-payments reconciliation, which sends the same key.
    """
    try:
        get_gateway(provider).cancel_payment(hold_id, card_check_release_key(checkout_id))
    except GatewayError:
        logger.warning(
            "could not release the card check %s of checkout %s at %s; reconciliation will",
            hold_id,
            checkout_id,
            provider,
            exc_info=True,
        )
        return False
    return True
