"""Commands run from another terminal see what `make run` set: its port, its sandbox, its clock.

`make run` writes var/demo.env (scripts/run.sh) and config.settings.local reads it. Here a
file like it names a port other than the default and a sandbox started by the test;
`billing_advance` runs in its own process with the local settings and nothing else in its
environment, and what it builds and sends is checked where a viewer and an accountant see it.
"""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection

from billing.models import Subscription, SubscriptionStatus
from core import clock
from ledger.models import RecognitionPlan
from ledger.services.checks import ledger_check
from payments.models import CheckoutSession, Payment, PaymentKind, PaymentStatus
from payments.sandbox import start_sandbox
from payments.services.checkout import checkout_sync
from payments.services.daily_report import reconciliation_report_for_day
from payments.tests.sandbox_helpers import Control
from tariffs.tests.factories import TariffFactory

BASE_DIR = Path(django_settings.BASE_DIR)
DEMO_PORT = 18765  # not make run's default 8000
# What a developer's shell may hold; the command must get all of it from the file instead.
FROM_THE_FILE = (
    "PORT",
    "HOST",
    "PUBLIC_BASE_URL",
    "STRIPE_SANDBOX_PORT",
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "CHECKOUT_SUCCESS_URL",
    "CHECKOUT_CANCEL_URL",
    "BILLING_CLOCK_FILE",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
)


def _database_url() -> str:
    """Return the test database as a DATABASE_URL, as `make run` would write PostgreSQL's."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(str(db["PASSWORD"]), safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture
def demo_sandbox(tmp_path, settings):
    """Start a Stripe sandbox that follows a billing clock kept in a file of this test."""
    clock_file = tmp_path / "billing-clock.json"
    settings.BILLING_CLOCK_FILE = str(clock_file)
    handle = start_sandbox(webhook_url=None, clock_file=clock_file)
    settings.STRIPE_API_BASE = handle.base_url
    yield handle
    handle.stop()


def _subscribe_and_pay(viewer_client, sandbox: Control, user_id: str, card: str) -> Subscription:
    body = viewer_client(user_id).post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json").json()
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    assert checkout.provider_session_id is not None
    outcome = sandbox.pay(checkout.provider_session_id, card)
    if outcome["outcome"] == "requires_action":
        sandbox.post(f"/checkout/{checkout.provider_session_id}/authenticate", {"action": "complete"})
    checkout_sync(provider_session_id=checkout.provider_session_id)
    return Subscription.objects.get(pk=checkout.subscription_id)


def _run_billing_advance(demo_env: Path, days: int) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in FROM_THE_FILE}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", DEMO_ENV_FILE=str(demo_env))
    return subprocess.run(  # noqa: S603 - this interpreter, manage.py, fixed arguments
        [sys.executable, "manage.py", "billing_advance", "--days", str(days)],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_billing_advance_from_another_terminal_uses_the_demos_port_sandbox_and_clock(
    tmp_path, demo_sandbox, viewer_client, settings
):
    TariffFactory(slug="monthly", name="Monthly", amount=39900, currency="RUB")
    control = Control(demo_sandbox)
    renewing = _subscribe_and_pay(viewer_client, control, "alice", "4242424242424242")
    confirming = _subscribe_and_pay(viewer_client, control, "bob", "4000002760003184")
    base_url = f"http://127.0.0.1:{DEMO_PORT}"
    sandbox_port = demo_sandbox.base_url.rsplit(":", 1)[1]
    demo_env = tmp_path / "demo.env"
    demo_env.write_text(
        "\n".join(
            [
                "# as scripts/run.sh writes it",
                f"PORT={DEMO_PORT}",
                "HOST=127.0.0.1",
                f"PUBLIC_BASE_URL={base_url}",
                f"STRIPE_SANDBOX_PORT={sandbox_port}",
                "STRIPE_WEBHOOK_SECRET=whsec_sandbox_local_only",
                f"BILLING_CLOCK_FILE={settings.BILLING_CLOCK_FILE}",
                f"DATABASE_URL={_database_url()}",
                f"CELERY_BROKER_URL={settings.CELERY_BROKER_URL}",
                "LOG_LEVEL=WARNING",
            ]
        )
        + "\n"
    )
    days = (renewing.current_period_end - clock.now()).days + 1

    result = _run_billing_advance(demo_env, days)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Billing time is now" in result.stdout
    # The renewal that needs the bank's confirmation got a page on make run's sandbox,
    # which sends the viewer back to make run's port.
    confirming.refresh_from_db()
    assert confirming.status == SubscriptionStatus.PAST_DUE
    page = CheckoutSession.objects.get(payment__kind=PaymentKind.RENEWAL, subscription=confirming)
    assert page.url and page.url.startswith(demo_sandbox.base_url + "/")
    sessions = {session["id"]: session for session in control.objects("checkout.session")}
    assert sessions[page.provider_session_id]["success_url"].startswith(f"{base_url}/checkout/success/")
    assert sessions[page.provider_session_id]["cancel_url"].startswith(f"{base_url}/checkout/cancel/")
    # The renewal charged at billing time is dated that day at Stripe too: the day's
    # reconciliation report finds both sides and no mismatch.
    renewal = Payment.objects.get(kind=PaymentKind.RENEWAL, subscription=renewing)
    assert renewal.status == PaymentStatus.SUCCEEDED and renewal.paid_at is not None
    assert renewal.paid_at > clock.now() - timedelta(days=2)  # billing time, a month on
    report = reconciliation_report_for_day(day=renewal.paid_at.date())
    assert report.mismatches == []
    [rub] = report.totals
    assert (rub.our_payments, rub.provider_charges, rub.our_gross, rub.provider_gross) == (1, 1, 39900, 39900)
    # The books: every day the clock passed was earned on its day, and they agree with the
    # payments. Alice's first month is over, so all of it is revenue.
    check = ledger_check()
    assert (check.mismatches, check.unbalanced_entries) == ([], 0)
    first = Payment.objects.get(kind=PaymentKind.INITIAL, subscription=renewing)
    assert RecognitionPlan.objects.get(payment=first).recognized == 39900
