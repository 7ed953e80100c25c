"""Warn viewers whose saved card expires before their next renewal, once per card and renewal.

A daily job (`notifications.tasks.record_card_expiry_notices`) looks at the subscriptions that
will renew within `NOTICE_CARD_EXPIRY_DAYS`, reads the card their renewal will charge (the one
saved at the subscription's provider) and records a `card_expiring` notice when the card's last
valid month ends before the renewal. The notice's key is (kind, subscription, period, card):
the database refuses a second one, so a rerun, or two workers at once, send it once, and a
card saved afterwards that expires too early is warned about again.
"""

import hashlib
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from billing.models import Subscription, SubscriptionStatus
from billing.pricing import amount_for_period
from notifications.models import NoticeKind
from notifications.payloads import iso
from notifications.services.notices import notice_record
from payments.models import ProviderCustomer
from payments.selectors import provider_customer_get, subscription_provider

S = SubscriptionStatus
# The notice's `reference` column holds at most this many characters.
REFERENCE_LENGTH = 64


def card_valid_until(*, exp_month: int, exp_year: int) -> datetime:
    """Return the first instant (UTC) a card is no longer valid: it works through its expiry month."""
    if exp_month == 12:
        return datetime(exp_year + 1, 1, 1, tzinfo=UTC)
    return datetime(exp_year, exp_month + 1, 1, tzinfo=UTC)


def card_expires_before(card: ProviderCustomer, moment: datetime) -> bool:
    """Return whether a saved card can no longer be charged at `moment` (unknown expiry: False)."""
    if not card.card_exp_month or not card.card_exp_year:
        return False
    return card_valid_until(exp_month=card.card_exp_month, exp_year=card.card_exp_year) <= moment


def subscriptions_renewing_soon(*, now: datetime, within: timedelta) -> QuerySet[Subscription]:
    """Return subscriptions that will charge their saved card at a period end within `within`.

    Trials included: their first charge is the renewal at the trial's end.
    """
    return Subscription.objects.filter(
        status__in=(S.ACTIVE, S.TRIALING),
        autopay=True,
        cancel_at_period_end=False,
        current_period_end__gt=now,
        current_period_end__lte=now + within,
    ).select_related("account", "tariff")


def _card_reference(card: ProviderCustomer) -> str:
    # The provider's id of the saved method names the card; a longer id than the column holds
    # is replaced by its digest, which names it as well.
    ref = card.payment_method_ref
    if len(ref) <= REFERENCE_LENGTH:
        return ref
    return hashlib.sha256(ref.encode()).hexdigest()[:REFERENCE_LENGTH]


def card_expiry_facts(subscription: Subscription, card: ProviderCustomer) -> dict[str, object]:
    """Return the facts of the email: which card, when it stops working, what renews when, and where to replace it."""
    account = subscription.account
    return {
        "tariff_name": subscription.tariff.name_for(account.language),
        "renews_at": iso(subscription.current_period_end),
        "amount": amount_for_period(subscription=subscription, period_start=subscription.current_period_end),
        "currency": subscription.currency,
        "card_brand": card.card_brand,
        "card_last4": card.card_last4,
        "card_exp_month": card.card_exp_month,
        "card_exp_year": card.card_exp_year,
        "update_url": settings.CARD_UPDATE_URL,
    }


def card_expiry_notices_record(*, now: datetime) -> int:
    """Record the card-expiring notices due by billing time `now`; return how many are new.

    Safe to run any number of times, also at once (see the module's docstring).
    """
    within = timedelta(days=settings.NOTICE_CARD_EXPIRY_DAYS)
    recorded = 0
    for subscription in subscriptions_renewing_soon(now=now, within=within).iterator():
        renews_at, period_start = subscription.current_period_end, subscription.current_period_start
        if renews_at is None or period_start is None:
            continue
        card = provider_customer_get(
            account_id=subscription.account_id, provider=subscription_provider(subscription=subscription)
        )
        if card is None or not card.payment_method_ref or not card_expires_before(card, renews_at):
            continue
        recorded += notice_record(
            kind=NoticeKind.CARD_EXPIRING,
            subscription=subscription,
            period_start=period_start,
            reference=_card_reference(card),
            context=card_expiry_facts(subscription, card),
        )
    return recorded
