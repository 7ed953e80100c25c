"""Each provider's clearing balance in our books stands next to the balance the provider reports.

The provider is the in-memory one, which reports what its ledger entries add up to. The day:
two payments of 399.00 RUB, 100.00 RUB of one refunded, and a payout of 500.00 RUB; until the
daily settlement job posts the fees and the payout, the books hold more than the provider.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from core import clock
from core.money import format_money
from ledger.provider_balances import provider_balance_comparison
from ledger.services.settlement import provider_settlement_post
from payments.gateways.errors import TemporaryGatewayError
from payments.sandbox.objects import processing_fee
from payments.services.refunds.staff import refund_create
from payments.tests.refund_helpers import pay, support_staff

pytestmark = pytest.mark.django_db

PAID = 2 * 39900
REFUNDED = 10000
PAID_OUT = 50000
FEES = 2 * processing_fee(39900)
# What the provider holds once it has taken its fees and paid out: the books' figure in the end.
HELD = PAID - REFUNDED - FEES - PAID_OUT


@pytest.fixture
def day_of_money(viewer_client, memory_provider):
    """Two payments, a partial refund and a payout, all booked by the provider today."""
    first = pay(viewer_client, memory_provider, "alice")
    pay(viewer_client, memory_provider, "bob")
    refund_create(
        payment=first, amount=REFUNDED, reason="requested_by_customer", created_by=support_staff("agent")
    )
    memory_provider.gateway.pay_out(PAID_OUT, "RUB")
    return memory_provider


def settle_today() -> None:
    provider_settlement_post(provider="stripe", day=clock.now().date())


def provider_cannot_be_read(memory_provider, monkeypatch) -> None:
    def unreachable():
        raise TemporaryGatewayError("Stripe did not answer in time", code="api_connection_error")

    monkeypatch.setattr(memory_provider.gateway, "retrieve_balance", unreachable)


class TestComparison:
    def test_before_fees_and_payouts_are_posted_the_books_hold_more_by_just_those(self, day_of_money):
        [row] = provider_balance_comparison(at=clock.now())

        assert (row.provider, row.currency) == ("stripe", "RUB")
        assert row.books == PAID - REFUNDED
        assert (row.available, row.pending, row.reported) == (HELD, 0, HELD)
        assert row.difference == FEES + PAID_OUT
        assert not row.agrees

    def test_once_the_settlement_job_has_posted_them_the_books_and_the_provider_agree(self, day_of_money):
        settle_today()

        [row] = provider_balance_comparison(at=clock.now())

        assert (row.books, row.reported, row.difference) == (HELD, HELD, 0)
        assert row.agrees

    def test_a_provider_that_cannot_be_read_gives_a_row_that_says_so(self, day_of_money, monkeypatch):
        provider_cannot_be_read(day_of_money, monkeypatch)

        [row] = provider_balance_comparison(at=clock.now())

        assert (row.provider, row.currency, row.books) == ("stripe", "RUB", PAID - REFUNDED)
        assert row.unreadable == "Stripe did not answer in time"
        assert (row.reported, row.difference, row.agrees) == (None, None, False)

    def test_a_provider_holding_nothing_has_no_row_unless_it_cannot_be_read(
        self, memory_provider, monkeypatch
    ):
        assert provider_balance_comparison(at=clock.now()) == []

        provider_cannot_be_read(memory_provider, monkeypatch)
        [row] = provider_balance_comparison(at=clock.now())

        assert (row.provider, row.currency, row.books, row.reported) == ("stripe", "", 0, None)
        assert row.unreadable

    def test_a_provider_the_books_hold_money_for_that_is_no_longer_configured_is_unreadable(
        self, day_of_money, settings
    ):
        settings.PAYMENT_PROVIDERS = {"other": "payments.gateways.stripe_setup.gateway_from_settings"}
        settings.DEFAULT_PAYMENT_PROVIDER = "other"

        rows = {row.provider: row for row in provider_balance_comparison(at=clock.now())}

        assert rows["stripe"].books == PAID - REFUNDED
        assert "not one of the payment providers" in rows["stripe"].unreadable
        assert rows["other"].books == 0 and rows["other"].reported == HELD


class TestReportPage:
    URL = reverse("admin:ledger_trial_balance")

    def test_accounting_sees_the_provider_next_to_the_books_now(self, login_as, day_of_money):
        response = login_as("Accounting").get(self.URL)

        [line] = response.context["providers"]
        assert (line.provider, line.currency) == ("stripe", "RUB")
        assert line.books == format_money(PAID - REFUNDED, "RUB")
        assert line.reported == format_money(HELD, "RUB")
        assert line.difference == format_money(FEES + PAID_OUT, "RUB")
        assert "held for us, per the provider" in response.content.decode()

    def test_after_settlement_the_page_shows_no_difference(self, login_as, day_of_money):
        settle_today()

        [line] = login_as("Accounting").get(self.URL).context["providers"]

        assert line.agrees
        assert line.difference == format_money(0, "RUB")

    def test_a_past_day_shows_the_books_only_and_does_not_read_the_provider(self, login_as, day_of_money):
        clock.advance(timedelta(days=1))
        yesterday = (clock.now().date() - timedelta(days=1)).isoformat()

        response = login_as("Accounting").get(self.URL, {"day": yesterday})

        assert response.context["providers"] is None
        assert ["stripe", "RUB", format_money(PAID - REFUNDED, "RUB")] in response.context["clearing"]
        page = response.content.decode()
        assert "held for us, per the provider" not in page
        assert "leave the day empty" in page
        assert day_of_money.calls("retrieve_balance") == []

    def test_a_provider_that_cannot_be_read_is_said_on_the_page_not_a_500(
        self, login_as, day_of_money, monkeypatch
    ):
        provider_cannot_be_read(day_of_money, monkeypatch)

        response = login_as("Accounting").get(self.URL)

        assert response.status_code == 200
        [line] = response.context["providers"]
        assert line.books == format_money(PAID - REFUNDED, "RUB")
        assert "Could not be read: Stripe did not answer in time" in response.content.decode()

    def test_support_does_not_see_the_balances(self, login_as, day_of_money):
        assert login_as("Support").get(self.URL).status_code == 403
        assert day_of_money.calls("retrieve_balance") == []


class TestLedgerReportCommand:
    def run(self, *args: str) -> str:
        out = StringIO()
        call_command("ledger_report", "--trial-balance", *args, stdout=out)
        return out.getvalue()

    def test_now_it_prints_the_provider_next_to_the_books(self, day_of_money):
        printed = self.run()

        assert "per the provider" in printed
        assert format_money(HELD, "RUB") in printed
        assert format_money(FEES + PAID_OUT, "RUB") in printed

    def test_at_a_past_moment_it_prints_the_books_only(self, day_of_money):
        clock.advance(timedelta(days=1))

        printed = self.run("--at", (clock.now().date() - timedelta(days=1)).isoformat())

        assert "Held by each provider, per our books" in printed
        assert "per the provider" not in printed
        assert day_of_money.calls("retrieve_balance") == []

    def test_a_provider_that_cannot_be_read_is_said_and_the_books_still_printed(
        self, day_of_money, monkeypatch
    ):
        provider_cannot_be_read(day_of_money, monkeypatch)

        printed = self.run()

        assert format_money(PAID - REFUNDED, "RUB") in printed
        assert "stripe could not be read: Stripe did not answer in time" in printed
