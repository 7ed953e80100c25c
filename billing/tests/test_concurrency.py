"""Racing requests cannot give one account two live subscriptions (real PostgreSQL, real threads)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from accounts.models import BillingAccount
from billing.models import LIVE_STATUSES, Subscription
from billing.services import subscription_create
from core.errors import LiveSubscriptionExists
from tariffs.models import Tariff

RACERS = 8


@pytest.mark.django_db(transaction=True)
def test_racing_subscribes_create_exactly_one_live_subscription():
    assert connection.vendor == "postgresql"
    account = BillingAccount.objects.create(user_id="racer")
    tariffs = [
        Tariff.objects.create(slug=f"t{i}", name=f"T{i}", amount=10000 + i, currency="RUB")
        for i in range(RACERS)
    ]
    start = threading.Barrier(RACERS)

    def subscribe(tariff: Tariff) -> str:
        try:
            start.wait()
            subscription_create(account=account, tariff=tariff)
            return "created"
        except LiveSubscriptionExists:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        outcomes = list(pool.map(subscribe, tariffs))

    assert sorted(outcomes) == ["created"] + ["refused"] * (RACERS - 1)
    assert Subscription.objects.filter(account=account, status__in=LIVE_STATUSES).count() == 1
