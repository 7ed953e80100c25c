"""Forty viewers race subscribes for three tariffs against a live server; no charge is lost.

The suite's small version of bench/soak_subscribe.py: real HTTP against pytest-django's live
server (a thread per request), the offline Stripe sandbox, every page handed out paid with
4242, then reconciliation until a pass changes nothing.
"""

import sys
from typing import Any

import pytest
from pytest_django.live_server_helper import LiveServer

from bench.soak_subscribe import soak
from payments.tests.sandbox_helpers import Control
from tariffs.models import Tariff

pytestmark = pytest.mark.django_db(transaction=True)
VIEWERS = 40
TARIFFS = [("soak-monthly", 39900), ("soak-hd", 59900), ("soak-4k", 79900)]


def test_viewers_racing_subscribes_lose_no_charge(
    live_server: LiveServer, stripe_sandbox: Control, _no_rate_limit: None, capsys: Any
) -> None:
    for slug, amount in TARIFFS:
        Tariff.objects.create(slug=slug, name=slug, amount=amount, currency="RUB")

    report = soak(
        base_url=live_server.url,
        sandbox=stripe_sandbox,
        viewers=VIEWERS,
        tariffs=[slug for slug, _ in TARIFFS],
        concurrency=8,
        user_prefix="soak-test",
    )

    text = "\n".join(report.lines())
    with capsys.disabled():
        sys.stdout.write(f"\n{text}\n")
    assert report.requests == VIEWERS * len(TARIFFS), text
    assert report.charges > 0, text
    # No 5xx; every accepted charge gives access or was refunded; the state is consistent.
    assert report.ok, text
    assert report.with_access + report.refunded == report.charges, text
