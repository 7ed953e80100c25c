"""Opening a checkout page: prepare the rows, open the page at the provider, close a replaced one.

1. `checkout_prepare` writes the payment and checkout rows (in the caller's transaction);
2. `checkout_open` calls the provider under the account's and the checkout row's locks with
   the checkout id as the idempotency key, so a retry after a timeout gets the same page back;
3. `checkout_abandon` expires a replaced page at the provider before closing its row.
The result page reads `checkout_status`, which re-reads an open page (settle.py).
"""

import logging
import uuid
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from billing.locks import account_lock, subscription_lock_with_account
from billing.models import Subscription
from billing.pricing import amount_for_period
from core import clock
from core.errors import DomainError
from payments.gateways import get_gateway
from payments.gateways.base import CheckoutRequest
from payments.gateways.errors import GatewayError
from payments.models import (
    CheckoutMode,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
)
from payments.services.checkout.settle import _apply_expired, checkout_sync
from payments.services.customers import customer_for

logger = logging.getLogger(__name__)

# A checkout is offered again only while the viewer still has time to pay it.
REUSE_MARGIN = timedelta(minutes=5)


class CheckoutReplaced(DomainError):
    code = "checkout_replaced"
    message = "Another subscribe request of yours replaced this one before its page opened."
    status_code = 409


def checkout_idempotency_key(checkout: CheckoutSession) -> str:
    """Return the key of the provider call that opens this checkout's page."""
    return f"checkout:{checkout.pk}"


def checkout_is_reusable(checkout: CheckoutSession, *, now: datetime) -> bool:
    """Return whether an open checkout can still be handed to the viewer."""
    return checkout.status == CheckoutStatus.OPEN and checkout.expires_at > now + REUSE_MARGIN


def checkout_prepare(*, subscription: Subscription, trial: bool) -> CheckoutSession:
    """Write the rows of a new checkout for a pending subscription (no call to the provider).

    The checkout and its payment go through the tariff's provider. A trial saves the card
    without a charge (setup mode), and so does a first period that a promo code makes free
    (a checkout page takes no zero payment); otherwise the first period's payment is created
    at its price (`billing.pricing.amount_for_period`).
    """
    provider = subscription.tariff.payment_provider
    expires_at = clock.now() + settings.CHECKOUT_SESSION_TTL
    amount = amount_for_period(subscription=subscription, period_start=None)
    if trial or amount == 0:
        return CheckoutSession.objects.create(
            subscription=subscription, mode=CheckoutMode.SETUP, provider=provider, expires_at=expires_at
        )
    payment_id = uuid.uuid4()
    payment = Payment.objects.create(
        id=payment_id,
        subscription=subscription,
        kind=PaymentKind.INITIAL,
        amount=amount,
        currency=subscription.currency,
        provider=provider,
        idempotency_key=f"payment:{payment_id}",
    )
    return CheckoutSession.objects.create(
        subscription=subscription,
        payment=payment,
        mode=CheckoutMode.PAYMENT,
        provider=provider,
        expires_at=expires_at,
    )


def checkout_prepare_for_payment(*, payment: Payment) -> CheckoutSession:
    """Write a checkout that pays exactly this (renewal) payment, on the viewer's side.

    Used when the bank wants the card holder present: the page is opened at the payment's
    provider, and the card entered on it becomes the one saved there.
    """
    return CheckoutSession.objects.create(
        subscription_id=payment.subscription_id,
        payment=payment,
        mode=CheckoutMode.PAYMENT,
        provider=payment.provider,
        expires_at=clock.now() + settings.CHECKOUT_SESSION_TTL,
    )


def _return_url(base: str, checkout: CheckoutSession) -> str:
    # The result page finds the checkout by our id; the provider may add its own page's id.
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}checkout={checkout.pk}"


def _checkout_request(checkout: CheckoutSession, customer_id: str) -> CheckoutRequest:
    subscription = checkout.subscription
    metadata = {"checkout_id": str(checkout.pk), "subscription_id": str(subscription.pk)}
    if checkout.payment_id:
        metadata["payment_id"] = str(checkout.payment_id)
    return CheckoutRequest(
        # A trial and a card update both save a card without a charge.
        mode="setup" if checkout.mode in (CheckoutMode.SETUP, CheckoutMode.CARD_UPDATE) else "payment",
        customer_id=customer_id,
        amount=checkout.payment.amount if checkout.payment is not None else None,
        currency=subscription.currency,
        product_name=subscription.tariff.name_for(subscription.account.language),
        client_reference_id=str(checkout.pk),
        metadata=metadata,
        # Renewals charge the saved card off-session, so it is saved whenever autopay is on.
        save_payment_method=subscription.autopay,
        success_url=_return_url(settings.CHECKOUT_SUCCESS_URL, checkout),
        cancel_url=_return_url(settings.CHECKOUT_CANCEL_URL, checkout),
        # The row's expiry is on the billing clock, as every comparison of the service is; the
        # provider measures a page's life on the real clock (30 minutes to 24 hours from its
        # own now), which the demo's moved billing clock runs ahead of.
        expires_at=checkout.expires_at - clock.offset(),
        locale=subscription.account.language,
        idempotency_key=checkout_idempotency_key(checkout),
        # A provider that registers a 54-FZ receipt (YooKassa) sends it to the viewer's email.
        receipt_email=subscription.account.email,
    )


def checkout_open(*, checkout_id: UUID) -> CheckoutSession:
    """Open the provider's page of a prepared checkout, once, and return the checkout.

    Runs under the account's lock, then the checkout's (the service's lock order), so it
    never races a subscribe that replaces this checkout: either the page is opened first and
    the replacing subscribe expires it at the provider, or the checkout was given up first and
    no page is ever opened for it (`CheckoutReplaced`). A provider failure leaves the row
    without a page, and the next call retries with the same idempotency key, so the provider
    never opens a second page for one checkout.
    """
    with transaction.atomic():
        account_id = CheckoutSession.objects.values_list("subscription__account_id", flat=True).get(
            pk=checkout_id
        )
        account = account_lock(account_id)
        checkout = (
            CheckoutSession.objects.select_for_update(of=("self",))
            .select_related("subscription__account", "subscription__tariff", "payment")
            .get(pk=checkout_id)
        )
        if checkout.provider_session_id:
            return checkout
        if checkout.status != CheckoutStatus.OPEN:
            raise CheckoutReplaced(details={"checkout": str(checkout.pk)})
        customer = customer_for(account=account, provider=checkout.provider)
        session = get_gateway(checkout.provider).create_checkout_session(
            _checkout_request(checkout, customer.customer_ref)
        )
        checkout.provider_session_id = session.id
        checkout.url = session.url or ""
        checkout.save(update_fields=["provider_session_id", "url", "updated_at"])
        if checkout.payment_id:
            Payment.objects.filter(pk=checkout.payment_id).update(provider_checkout_id=session.id)
    return checkout


def checkout_abandon(*, checkout: CheckoutSession) -> bool:
    """Close an open checkout the viewer replaced; return False if it turned out to be paid.

    Everything is decided under the locks of the account, the subscription and the checkout,
    so a page being opened at the same moment is either seen (and expired at the provider) or
    never opened. The provider's page is expired before the row is closed, so it cannot be
    paid after we stop honouring it; if the provider says it is already complete, the payment
    is applied instead.
    """
    with transaction.atomic():
        subscription = subscription_lock_with_account(checkout.subscription_id)
        locked = CheckoutSession.objects.select_for_update(of=("self",)).get(pk=checkout.pk)
        if locked.status != CheckoutStatus.OPEN:
            return locked.status != CheckoutStatus.COMPLETE
        if locked.provider_session_id:
            try:
                get_gateway(locked.provider).expire_checkout_session(
                    locked.provider_session_id, idempotency_key=f"expire:{locked.pk}"
                )
            except GatewayError:
                # Expiring a page that is no longer open fails: find out what it became.
                synced = checkout_sync(
                    provider_session_id=locked.provider_session_id, provider=locked.provider
                )
                if synced is not None and synced.status == CheckoutStatus.COMPLETE:
                    return False
                if synced is not None and synced.status == CheckoutStatus.EXPIRED:
                    return True
                raise
        payment = Payment.objects.select_for_update().get(pk=locked.payment_id) if locked.payment_id else None
        _apply_expired(locked, payment, subscription)
    return True


# The result page polls every couple of seconds; the provider is asked at most this often per checkout.
STATUS_RESYNC_SECONDS = 3


def checkout_status(*, checkout_id: UUID) -> CheckoutSession | None:
    """Return a checkout for its result page, re-reading it from its provider while it is open.

    The re-read is how a paid checkout settles even if its webhook is late or lost; it is
    throttled per checkout, and a provider failure just leaves the stored state.
    """
    checkout = CheckoutSession.objects.filter(pk=checkout_id).first()
    if checkout is None:
        return None
    due = cache.add(f"checkout-resync:{checkout.pk}", 1, timeout=STATUS_RESYNC_SECONDS)
    if checkout.status == CheckoutStatus.OPEN and checkout.provider_session_id and due:
        try:
            checkout_sync(provider_session_id=checkout.provider_session_id, provider=checkout.provider)
        except GatewayError:
            logger.warning(
                "could not re-read checkout %s from %s", checkout.pk, checkout.provider, exc_info=True
            )
    return CheckoutSession.objects.select_related("payment", "subscription").get(pk=checkout_id)
