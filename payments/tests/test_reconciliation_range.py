"""The reconciliation report covers a range of UTC days and opens on the last day with activity.

Payments are real checkouts paid in the offline sandbox, which follows the billing clock as it
does under `make run`. Between two payments the billing clock moves forward by days, so that
the days of a range hold different payments on both sides and every report stays free of
mismatches.
"""

from datetime import UTC, date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.tests.roles import staff_member
from core import clock
from payments.models import Payment, Refund, RefundReason, RefundStatus
from payments.services.daily_report import (
    MAX_REPORT_DAYS,
    ReportRangeError,
    reconciliation_last_active_day,
    reconciliation_report,
)
from payments.services.refunds.staff import refund_create
from payments.tests.factories import PaymentFactory
from payments.tests.refund_helpers import pay

pytestmark = pytest.mark.django_db
REPORT_URL = "/admin/payments/payment/reconciliation-report/"


def today() -> date:
    return timezone.now().astimezone(UTC).date()


@pytest.fixture
def sandbox_follows_the_billing_clock(_sandbox_server, stripe_sandbox, settings):
    """Have Stripe's `created` stamps follow the billing clock, as `make run` sets it up."""
    config = _sandbox_server.sandbox.config
    config.clock_file = settings.BILLING_CLOCK_FILE
    yield stripe_sandbox
    config.clock_file = None


def days_pass(days: int) -> None:
    clock.advance(timedelta(days=days))


@pytest.fixture
def two_days(viewer_client, sandbox_follows_the_billing_clock):
    """Bob pays today, Alice three days later; return the two days."""
    stripe_sandbox = sandbox_follows_the_billing_clock
    pay(viewer_client, stripe_sandbox, "bob")
    days_pass(3)
    pay(viewer_client, stripe_sandbox, "alice")
    return today(), today() + timedelta(days=3)


class TestRange:
    def test_a_range_sums_the_days_it_holds(self, two_days):
        earlier, later = two_days

        whole = reconciliation_report(date_from=earlier, date_to=later)
        first_only = reconciliation_report(date_from=earlier, date_to=later - timedelta(days=1))
        last_only = reconciliation_report(date_from=later, date_to=later)

        assert (whole.mismatches, first_only.mismatches, last_only.mismatches) == ([], [], [])
        [rub] = whole.totals
        assert (rub.our_payments, rub.our_gross, rub.provider_charges, rub.provider_gross) == (
            2,
            79800,
            2,
            79800,
        )
        assert [(t.our_payments, t.provider_charges) for t in first_only.totals] == [(1, 1)]
        assert [(t.our_payments, t.provider_charges) for t in last_only.totals] == [(1, 1)]

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (date(2026, 3, 10), date(2026, 3, 9)),
            (date(2026, 3, 1), date(2026, 3, 1) + timedelta(days=MAX_REPORT_DAYS)),
        ],
    )
    def test_a_backwards_or_too_long_range_is_refused_before_stripe_is_read(self, stripe_sandbox, start, end):
        with pytest.raises(ReportRangeError):
            reconciliation_report(date_from=start, date_to=end)

        assert stripe_sandbox.requests(path_prefix="/v1/") == []

    def test_the_longest_range_is_accepted(self, stripe_sandbox):
        report = reconciliation_report(
            date_from=date(2026, 3, 1), date_to=date(2026, 3, 1) + timedelta(days=MAX_REPORT_DAYS - 1)
        )

        assert (report.totals, report.mismatches) == ([], [])


class TestLastActiveDay:
    def test_with_nothing_ever_paid_it_is_today(self):
        assert reconciliation_last_active_day() == clock.now().astimezone(UTC).date()

    def test_it_is_the_day_of_the_latest_payment_or_refund(self):
        now = timezone.now()
        payment = PaymentFactory(paid_at=now - timedelta(days=9))
        PaymentFactory(paid_at=now - timedelta(days=20))
        assert reconciliation_last_active_day() == (now - timedelta(days=9)).date()

        refund = Refund.objects.create(
            payment=payment, amount=100, currency=payment.currency, status=RefundStatus.SUCCEEDED
        )
        Refund.objects.filter(pk=refund.pk).update(succeeded_at=now - timedelta(days=4))

        assert reconciliation_last_active_day() == (now - timedelta(days=4)).date()

    def test_unpaid_payments_and_refunds_that_failed_do_not_count(self):
        now = timezone.now()
        paid = PaymentFactory(paid_at=now - timedelta(days=9))
        PaymentFactory(status="failed", paid_at=now - timedelta(days=2))
        Refund.objects.create(
            payment=paid,
            amount=100,
            currency=paid.currency,
            status=RefundStatus.FAILED,
            succeeded_at=now - timedelta(days=1),
        )

        assert reconciliation_last_active_day() == (now - timedelta(days=9)).date()


class TestAdminPage:
    def test_without_dates_it_opens_on_the_last_day_with_activity(
        self, client, viewer_client, sandbox_follows_the_billing_clock
    ):
        pay(viewer_client, sandbox_follows_the_billing_clock, "alice")
        quiet_since = today()
        days_pass(5)
        client.force_login(staff_member("Accounting"))

        page = client.get(REPORT_URL).content.decode()

        assert f"Reconciliation report for {quiet_since.isoformat()} (UTC)" in page
        assert f'name="date_from" id="id_date_from" value="{quiet_since.isoformat()}"' in page
        assert "399.00 RUB" in page
        assert 'class="report-clean"' in page

    def test_a_range_shows_the_totals_of_all_its_days(self, client, two_days):
        earlier, later = two_days
        client.force_login(staff_member("Accounting"))

        page = client.get(
            REPORT_URL, {"date_from": earlier.isoformat(), "date_to": later.isoformat()}
        ).content.decode()

        assert f"Reconciliation report for {earlier.isoformat()} to {later.isoformat()} (UTC)" in page
        assert "798.00 RUB" in page
        assert "every payment and refund of these days matches" in page

    def test_a_start_alone_is_one_day(self, client, two_days):
        earlier, _later = two_days
        client.force_login(staff_member("Accounting"))

        page = client.get(REPORT_URL, {"date_from": earlier.isoformat(), "date_to": ""}).content.decode()

        assert f"Reconciliation report for {earlier.isoformat()} (UTC)" in page
        assert "399.00 RUB" in page
        assert "798.00 RUB" not in page

    @pytest.mark.parametrize(
        ("date_from", "date_to", "message"),
        [
            ("2026-03-10", "2026-03-09", "must not come before its start"),
            ("2026-01-01", "2026-03-31", f"at most {MAX_REPORT_DAYS} days"),
            ("2026-03-01", "2026-02-30", "YYYY-MM-DD"),
        ],
    )
    def test_a_range_that_cannot_be_reported_is_refused_politely(
        self, client, stripe_sandbox, date_from, date_to, message
    ):
        client.force_login(staff_member("Accounting"))

        response = client.get(REPORT_URL, {"date_from": date_from, "date_to": date_to})

        assert response.status_code == 200
        assert message in response.content.decode()
        assert stripe_sandbox.requests(path_prefix="/v1/") == []


class TestCommand:
    def test_prints_the_totals_of_a_range(self, two_days):
        earlier, later = two_days
        out = StringIO()

        call_command(
            "reconciliation_report", "--from", earlier.isoformat(), "--to", later.isoformat(), stdout=out
        )

        text = out.getvalue()
        assert f"Reconciliation report for {earlier.isoformat()} to {later.isoformat()} (UTC)" in text
        assert "RUB: ours 2 payments, gross 798.00 RUB" in text
        assert "No mismatches." in text

    def test_a_start_alone_is_one_day(self, two_days):
        earlier, _later = two_days
        out = StringIO()

        call_command("reconciliation_report", "--from", earlier.isoformat(), stdout=out)

        assert f"Reconciliation report for {earlier.isoformat()} (UTC)" in out.getvalue()
        assert "RUB: ours 1 payments, gross 399.00 RUB" in out.getvalue()

    def test_a_mismatch_anywhere_in_the_range_fails(self, viewer_client, stripe_sandbox):
        payment = pay(viewer_client, stripe_sandbox, "alice")
        Payment.objects.filter(pk=payment.pk).update(amount=100)
        start, end = today() - timedelta(days=2), today() + timedelta(days=4)
        out = StringIO()

        with pytest.raises(CommandError, match="1 mismatch"):
            call_command(
                "reconciliation_report", "--from", start.isoformat(), "--to", end.isoformat(), stdout=out
            )

        assert f"amount differs: payment {payment.pk}" in out.getvalue()

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            (["--day", "2026-03-01", "--from", "2026-03-01"], "not both"),
            (["--from", "2026-03-10", "--to", "2026-03-09"], "must not come before"),
            (["--from", "2026-01-01", "--to", "2026-03-31"], f"at most {MAX_REPORT_DAYS} days"),
            (["--to", "2026-02-30"], "YYYY-MM-DD"),
        ],
    )
    def test_a_range_that_cannot_be_reported_is_a_command_error(self, stripe_sandbox, arguments, message):
        with pytest.raises(CommandError, match=message):
            call_command("reconciliation_report", *arguments, stdout=StringIO())

        assert stripe_sandbox.requests(path_prefix="/v1/") == []


def test_a_refund_paid_back_in_the_range_counts_in_it(viewer_client, stripe_sandbox):
    payment = pay(viewer_client, stripe_sandbox, "alice")
    done = refund_create(payment=payment, amount=10000, reason=RefundReason.REQUESTED_BY_CUSTOMER)
    assert done.status == RefundStatus.SUCCEEDED

    report = reconciliation_report(date_from=today() - timedelta(days=2), date_to=today())

    [rub] = report.totals
    assert (rub.our_refunds, rub.provider_refunds, rub.our_net) == (10000, 10000, 29900)
    assert report.mismatches == []
