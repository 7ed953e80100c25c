"""A card number typed into the payment page is kept nowhere: not in our database, logs or the sandbox."""

import json
import logging
import os
import shutil
import subprocess

import pytest
from django.db import connection

from billing.pages import DEMO_VIEWER_ID
from payments.models import Payment, PaymentStatus
from tests.e2e.conftest import Site, Storefront

pytestmark = pytest.mark.e2e

CARD_NUMBER = "4242424242424242"


def spellings(number: str) -> list[str]:
    """Return the ways a card number can appear: bare, grouped, and as a form post encodes it."""
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return [number, *(separator.join(groups) for separator in (" ", "-", "+", "%20"))]


def assert_no_card_number(text: str, where: str) -> None:
    """Fail naming the place and the spelling, without printing all of `text`."""
    found = [spelling for spelling in spellings(CARD_NUMBER) if spelling in text]
    assert not found, f"{where} contains the card number as {found}"


def database_dump() -> str:
    """Return every row of the test database as pg_dump writes it (data only)."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.fail("pg_dump is missing: install the PostgreSQL client (postgresql-client)")
    db = connection.settings_dict
    command = [pg_dump, "--data-only", "--dbname", db["NAME"]]
    for option, value in (("--host", db["HOST"]), ("--port", db["PORT"]), ("--username", db["USER"])):
        if value:
            command += [option, str(value)]
    env = {**os.environ, "PGPASSWORD": str(db["PASSWORD"] or "")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)  # noqa: S603 - fixed arguments, no shell
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_browser_payment_leaves_no_card_number_behind(
    site: Site, storefront: Storefront, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
):
    # Everything anyone in this process logs, at every level: the live server and the sandbox.
    caplog.set_level(logging.DEBUG)
    storefront.open()
    storefront.subscribe("monthly")
    storefront.pay("4242 4242 4242 4242")
    storefront.wait_for_payment_received()
    site.wait_until_settled()
    payment = Payment.objects.get(subscription__account__user_id=DEMO_VIEWER_ID)
    assert (payment.status, payment.card_last4) == (PaymentStatus.SUCCEEDED, "4242")
    session_id = payment.provider_checkout_id
    assert session_id

    dump = database_dump()
    assert str(payment.pk) in dump and session_id in dump
    assert "4242" in dump  # the last four digits are kept, so the search below can find digits
    assert_no_card_number(dump, "the database")

    logged = caplog.text
    # The form post that carried the card number is in the log, so the search covers it.
    assert f"POST /checkout/{session_id}" in logged
    assert_no_card_number(logged, "the test process's log (live server and sandbox)")
    captured = capfd.readouterr()
    assert_no_card_number(captured.out + captured.err, "the test process's output")

    worker_log = site.worker.output()
    # At DEBUG the worker logs Stripe's answers whole, card brand and last four included.
    assert session_id in worker_log and '"last4": "4242"' in worker_log
    assert_no_card_number(worker_log, "the Celery worker's log")

    state = b"".join(
        path.read_bytes()
        for path in site.sandbox_state.parent.iterdir()
        if path.name.startswith(site.sandbox_state.name)
    ).decode("utf-8", "replace")
    assert session_id in state and '"last4": "4242"' in state
    assert_no_card_number(state, "the sandbox's state")
    requests = json.dumps([site.control.requests(), site.control.get("/deliveries")])
    assert "/v1/checkout/sessions" in requests
    assert_no_card_number(requests, "the sandbox's request and delivery log")
