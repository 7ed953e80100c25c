"""Durable action links: a link of ours that opens a payment page whenever it is followed.

A provider's checkout page dies after `CHECKOUT_SESSION_TTL` (an hour), but a viewer reads the
"confirm your payment" email when they read it. The email and the subscription's
`payment_action_url` therefore carry `/pay/<token>/`, where the token is the payment's id
signed with the service's secret (`django.core.signing`, its own salt): nothing is stored, a
forged or altered token is refused, and `SECRET_KEY_FALLBACKS` keeps old links working across
a key rotation. Following it (`action_link_follow`):

- while the renewal still awaits the viewer (`payments.selectors.renewal_awaits_viewer`), an
  open page of that payment with time left is handed out again, or a fresh one is opened;
- once it is paid, the viewer is told so; once it is given up (the subscription ended, the
  payment was canceled, a retry was scheduled instead), the viewer is told it can no longer be
  paid.

Never two payable pages for one payment: the decision runs under the account's and the
subscription's locks (then the payment's checkouts and the payment, the service's lock order),
so two follows at once queue up and the second finds the first one's checkout. A page too close
to its end to hand out is expired at the provider (`checkout_abandon`) before a fresh one is
opened, so the old one cannot be paid as well. A fresh page pays the same `Payment` row; the
provider call that opens it is keyed by the new checkout row, committed before the call
(`checkout_open`), so a retry never opens a second page for one checkout either.
"""

import enum
import logging
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from billing.locks import subscription_lock_with_account
from core import clock
from payments.models import PAID_STATUSES, CheckoutSession, CheckoutStatus, Payment
from payments.selectors import renewal_awaits_viewer
from payments.services.checkout import (
    CheckoutReplaced,
    checkout_abandon,
    checkout_is_reusable,
    checkout_open,
    checkout_prepare_for_payment,
)

logger = logging.getLogger(__name__)

# Tokens signed for this purpose only: a signature made elsewhere with the same key never passes.
ACTION_LINK_SALT = "payments.action-link"
# A checkout given up between our decision and its opening (the subscription just ended) is
# decided again; twice in a row is no longer a coincidence.
FOLLOW_ATTEMPTS = 2


def action_link_token(*, payment_id: UUID) -> str:
    """Return the signed, URL-safe token that names a payment in its action link."""
    return signing.Signer(salt=ACTION_LINK_SALT).sign(payment_id.hex)


def action_link_payment_id(*, token: str) -> UUID | None:
    """Return the payment a token names, or None for a token we did not sign (forged or altered)."""
    try:
        return UUID(hex=signing.Signer(salt=ACTION_LINK_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def action_link_url(*, payment_id: UUID) -> str:
    """Return the absolute URL of a payment's action link (for emails and the account page)."""
    path = reverse("payment-action-link", kwargs={"token": action_link_token(payment_id=payment_id)})
    return f"{settings.PUBLIC_BASE_URL}{path}"


class ActionLinkState(enum.StrEnum):
    # The viewer is sent to the provider's page (`checkout_url`).
    OPEN = "open"
    ALREADY_PAID = "already_paid"
    # Given up: the subscription ended or moved on, or the payment can no longer be made.
    CLOSED = "closed"
    # The token is ours but names no payment (never expected; a deleted row).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ActionLinkOutcome:
    state: ActionLinkState
    payment: Payment | None = None
    checkout_url: str = ""


@dataclass(frozen=True)
class _Decision:
    state: ActionLinkState
    payment: Payment | None = None
    checkout_id: UUID | None = None


def action_link_follow(*, payment_id: UUID) -> ActionLinkOutcome:
    """Decide what following a payment's action link shows, opening a provider page if it is due.

    Returns where to send the viewer (`OPEN` with the page's URL) or what to tell them. A
    provider failure (`GatewayError`) propagates with nothing half-done: the checkout row, if
    one was written, stays for the next follow to open with the same idempotency key.
    """
    payment = None
    for _ in range(FOLLOW_ATTEMPTS):
        decision = _decide(payment_id)
        payment = decision.payment
        if decision.state != ActionLinkState.OPEN or decision.checkout_id is None:
            return ActionLinkOutcome(state=decision.state, payment=decision.payment)
        try:
            checkout = checkout_open(checkout_id=decision.checkout_id)
        except CheckoutReplaced:
            logger.info("checkout %s was given up before it opened; deciding again", decision.checkout_id)
            continue
        if checkout.url:
            return ActionLinkOutcome(
                state=ActionLinkState.OPEN, payment=decision.payment, checkout_url=checkout.url
            )
    # Given up twice between decision and opening: it is being given up for good.
    return ActionLinkOutcome(state=ActionLinkState.CLOSED, payment=payment)


def _decide(payment_id: UUID) -> _Decision:
    """Decide under the locks which page the link leads to, writing a fresh checkout if none will do.

    The checkout row is committed before its page is opened (the caller's `checkout_open`),
    as every provider call of the service is made about committed rows.
    """
    with transaction.atomic():
        subscription_id = (
            Payment.objects.filter(pk=payment_id).values_list("subscription_id", flat=True).first()
        )
        if subscription_id is None:
            return _Decision(state=ActionLinkState.UNKNOWN)
        # account → subscription → checkout → payment: the service's lock order.
        subscription = subscription_lock_with_account(subscription_id)
        open_checkouts = list(
            CheckoutSession.objects.select_for_update(of=("self",))
            .filter(payment_id=payment_id, status=CheckoutStatus.OPEN)
            .order_by("-created_at")
        )
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status in PAID_STATUSES:
            return _Decision(state=ActionLinkState.ALREADY_PAID, payment=payment)
        if not renewal_awaits_viewer(subscription=subscription, payment=payment):
            return _Decision(state=ActionLinkState.CLOSED, payment=payment)
        now = clock.now()
        reusable = next((c for c in open_checkouts if checkout_is_reusable(c, now=now)), None)
        for stale in open_checkouts:
            if stale is reusable:
                continue
            # Expired at the provider before the row closes; False: it was paid meanwhile.
            if not checkout_abandon(checkout=stale):
                payment.refresh_from_db()
                return _Decision(state=ActionLinkState.ALREADY_PAID, payment=payment)
        if reusable is not None:
            return _Decision(state=ActionLinkState.OPEN, payment=payment, checkout_id=reusable.pk)
        checkout = checkout_prepare_for_payment(payment=payment)
        return _Decision(state=ActionLinkState.OPEN, payment=payment, checkout_id=checkout.pk)
