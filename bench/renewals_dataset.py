"""The database of bench/renewals: created, filled with due subscriptions, shrunk and dropped.

Every account has its own customer and saved card at the Stripe sandbox, made the way a
viewer's card is saved (a setup-mode Checkout Session, paid through the sandbox's control
API instead of its HTML page), so a renewal charges it exactly as it would a real one.
"""

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stripe
from django.conf import settings

from accounts.models import BillingAccount
from billing.models import Subscription, SubscriptionStatus
from billing.periods import add_months
from payments.models import Provider, ProviderCustomer
from tariffs.models import PeriodUnit, Tariff

SUCCEEDING_CARD = "4242424242424242"
BATCH = 2000


# --- saved cards at the sandbox ---------------------------------------------------------------


@dataclass(frozen=True)
class SavedCard:
    customer_id: str
    payment_method_id: str
    brand: str
    last4: str


def _save_card(client: stripe.StripeClient, control_url: str, number: int) -> SavedCard:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "currency": "rub",
            "customer_email": f"bench-viewer-{number}@example.com",
            "metadata": {"account_ref": f"bench-viewer-{number}"},
            "success_url": "http://127.0.0.1/checkout/success/",
            "cancel_url": "http://127.0.0.1/checkout/cancel/",
        }
    )
    request = urllib.request.Request(
        f"{control_url}/_sandbox/checkout/{session.id}/pay",
        data=json.dumps({"card_number": SUCCEEDING_CARD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        outcome = json.loads(response.read())
    if outcome["outcome"] != "succeeded":
        raise RuntimeError(f"the sandbox did not save the card: {outcome}")
    setup_intent = outcome["setup_intent"]
    method = setup_intent["payment_method"]
    return SavedCard(
        customer_id=outcome["session"]["customer"],
        payment_method_id=method["id"] if isinstance(method, dict) else method,
        brand="visa",
        last4=SUCCEEDING_CARD[-4:],
    )


def cards_save(*, count: int, api_base: str, threads: int = 8) -> list[SavedCard]:
    """Save `count` cards at the sandbox, one customer each, from a few threads at once."""
    client = stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses={"api": api_base}, max_network_retries=2
    )
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda number: _save_card(client, api_base, number), range(count)))


# --- accounts and due subscriptions -----------------------------------------------------------


def tariff_create() -> Tariff:
    """Create the monthly tariff every benchmark subscription has."""
    return Tariff.objects.create(
        slug="monthly", name="Monthly", amount=39900, currency="RUB", period_unit=PeriodUnit.MONTH
    )


def billing_anchor(now: datetime) -> datetime:
    """Return an anchor whose first monthly period ended two days before `now`."""
    return add_months(now - timedelta(days=2), -1)


def subscriptions_create(
    *, tariff: Tariff, cards: list[SavedCard], anchor: datetime, period: int = 0, first: int = 0
) -> list[Any]:
    """Create one account per card, each with an active monthly subscription in period `period`.

    Period 0 starts at `anchor`; each later one a month after. Accounts are numbered from
    `first`. Return the subscriptions' ids.
    """
    period_start, period_end = add_months(anchor, period), add_months(anchor, period + 1)
    accounts = [
        BillingAccount(
            user_id=f"bench-viewer-{first + number}",
            email=f"bench-viewer-{first + number}@example.com",
        )
        for number in range(len(cards))
    ]
    BillingAccount.objects.bulk_create(accounts, batch_size=BATCH)
    ProviderCustomer.objects.bulk_create(
        [
            ProviderCustomer(
                account=account,
                provider=Provider.STRIPE,
                customer_ref=card.customer_id,
                payment_method_ref=card.payment_method_id,
                card_brand=card.brand,
                card_last4=card.last4,
            )
            for account, card in zip(accounts, cards, strict=True)
        ],
        batch_size=BATCH,
    )
    subscriptions = Subscription.objects.bulk_create(
        [
            Subscription(
                account=account,
                tariff=tariff,
                amount=tariff.amount,
                currency=tariff.currency,
                status=SubscriptionStatus.ACTIVE,
                autopay=True,
                billing_anchor=anchor,
                current_period_start=period_start,
                current_period_end=period_end,
            )
            for account in accounts
        ],
        batch_size=BATCH,
    )
    return [subscription.pk for subscription in subscriptions]
