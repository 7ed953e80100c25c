"""The ledger's admin: Accounting reads the books, their reports and exports; Support does not.

The roles are the ones migrations give (accounts 0014_roles_ledger grants the ledger's).
"""

import csv
import io
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.context_processors import PermWrapper
from django.urls import reverse
from openpyxl import load_workbook

from core import clock
from core.money import format_money
from ledger.models import JournalEntry, Posting
from ledger.selectors import revenue_by_month
from ledger.tests import test_reports

pytestmark = pytest.mark.django_db

# The journey of the reports' tests: two currencies paid, ten days recognised, a partial refund.
journey = test_reports.journey

REPORTS = ("ledger_trial_balance", "ledger_deferred_revenue", "ledger_revenue_by_month")
PAGES = (
    *REPORTS,
    "ledger_journal_export",
    "ledger_journalentry_changelist",
    "ledger_ledgeraccount_changelist",
)


@pytest.fixture(autouse=True)
def _provider_offline(memory_provider):
    """The trial balance reads each provider's own balance: the in-memory one, never the network."""
    return memory_provider


def export(client, *, date_from, date_to, file_format: str):
    return client.get(
        reverse("admin:ledger_journal_export"),
        {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "file_format": file_format},
    )


class TestWhoSeesTheBooks:
    @pytest.mark.parametrize("page", PAGES)
    def test_accounting_opens_every_ledger_page(self, login_as, page):
        assert login_as("Accounting").get(reverse(f"admin:{page}")).status_code == 200

    @pytest.mark.parametrize("page", PAGES)
    def test_support_is_refused_every_ledger_page(self, login_as, page):
        assert login_as("Support").get(reverse(f"admin:{page}")).status_code == 403

    @pytest.mark.parametrize("page", REPORTS)
    def test_someone_not_logged_in_is_sent_to_the_login_page(self, client, page):
        response = client.get(reverse(f"admin:{page}"))

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))

    def test_support_cannot_export_the_journal(self, login_as):
        today = clock.now().date()

        assert (
            export(login_as("Support"), date_from=today, date_to=today, file_format="csv").status_code == 403
        )

    def test_the_journal_list_links_accounting_to_its_reports(self, login_as):
        page = login_as("Accounting").get(reverse("admin:ledger_journalentry_changelist")).content.decode()

        for name in (*REPORTS, "ledger_journal_export"):
            assert reverse(f"admin:{name}") in page

    def test_the_index_links_snippet_shows_the_reports_to_accounting_only(self):
        from django.template.loader import render_to_string

        from accounts.tests.roles import staff_member

        def links(role: str) -> str:
            user = staff_member(role)
            return render_to_string("admin/ledger/index_links.html", {"perms": PermWrapper(user)})

        assert reverse("admin:ledger_trial_balance") in links("Accounting")
        assert links("Support").strip() == ""

    def test_the_books_cannot_be_edited_from_admin(self, login_as, journey):
        client = login_as("Accounting")
        entry = JournalEntry.objects.first()
        assert entry is not None

        assert client.get(reverse("admin:ledger_journalentry_add")).status_code == 403
        assert client.post(reverse("admin:ledger_journalentry_delete", args=[entry.pk])).status_code == 403


class TestReportPages:
    def test_the_trial_balance_shows_each_currency_balanced(self, login_as, journey):
        response = login_as("Accounting").get(reverse("admin:ledger_trial_balance"))

        tables = {table.title: table for table in response.context["tables"]}
        assert set(tables) == {"RUB", "USD"}
        assert all(table.ok for table in tables.values())
        assert tables["RUB"].footer[2:4] == ["299.00 RUB", "299.00 RUB"]
        assert ["stripe", "RUB", "299.00 RUB"] in response.context["clearing"]

    def test_the_trial_balance_at_the_end_of_a_day_before_the_payments_is_empty(self, login_as, journey):
        day = (journey.paid_day - timedelta(days=1)).isoformat()

        response = login_as("Accounting").get(reverse("admin:ledger_trial_balance"), {"day": day})

        assert response.context["tables"] == []
        assert day in response.context["title"]

    def test_a_malformed_day_is_said_on_the_page(self, login_as):
        response = login_as("Accounting").get(reverse("admin:ledger_trial_balance"), {"day": "31/12/2026"})

        assert response.status_code == 200
        assert "YYYY-MM-DD" in response.context["error"]

    def test_the_deferred_schedule_totals_the_deferred_balance(self, login_as, journey):
        response = login_as("Accounting").get(reverse("admin:ledger_deferred_revenue"))

        tables = {table.title: table for table in response.context["tables"]}
        assert tables["USD"].footer == ["deferred now", format_money(999 - journey.usd_earned, "USD")]
        assert all(table.ok for table in tables.values())
        assert len(tables["RUB"].rows) == 13  # twelve months and "later"

    def test_revenue_by_month_shows_accrual_next_to_cash(self, login_as, journey):
        today = clock.now().astimezone(UTC).date()

        response = login_as("Accounting").get(
            reverse("admin:ledger_revenue_by_month"),
            {"date_from": journey.paid_day.isoformat(), "date_to": today.isoformat()},
        )

        [rubles] = [table for table in response.context["tables"] if table.title == "RUB"]
        # total: earned, refunds of earned, net revenue, cash in, cash refunded, net cash
        assert rubles.footer[4:] == ["399.00 RUB", "100.00 RUB", "299.00 RUB"]

    def test_a_range_ending_before_it_starts_is_refused_on_the_page(self, login_as):
        response = login_as("Accounting").get(
            reverse("admin:ledger_revenue_by_month"), {"date_from": "2026-05-01", "date_to": "2026-04-01"}
        )

        assert response.status_code == 200
        assert response.context["error"]
        assert response.context["tables"] == []


class TestJournalList:
    def test_entries_are_found_by_payment_id_and_by_source(self, login_as, journey):
        client = login_as("Accounting")
        url = reverse("admin:ledger_journalentry_changelist")

        by_payment = client.get(url, {"q": str(journey.dollars.pk)}).context["cl"].result_list
        by_source = client.get(url, {"q": f"payment:{journey.rubles.pk}"}).context["cl"].result_list

        assert {entry.payment_id for entry in by_payment} == {journey.dollars.pk}
        assert {entry.kind for entry in by_payment} == {"payment_captured", "revenue_recognized"}
        assert [entry.source for entry in by_source] == [f"payment:{journey.rubles.pk}"]

    def test_entries_are_filtered_by_currency_and_kind(self, login_as, journey):
        client = login_as("Accounting")
        url = reverse("admin:ledger_journalentry_changelist")

        refunds = client.get(url, {"kind__exact": "refund"}).context["cl"].result_list
        dollars = client.get(url, {"currency": "USD"}).context["cl"].result_list

        assert [entry.payment_id for entry in refunds] == [journey.rubles.pk]
        assert {entry.payment_id for entry in dollars} == {journey.dollars.pk}

    def test_an_entry_shows_its_postings(self, login_as, journey):
        entry = JournalEntry.objects.get(source=f"payment:{journey.rubles.pk}")

        page = login_as("Accounting").get(reverse("admin:ledger_journalentry_change", args=[entry.pk]))

        assert page.status_code == 200
        text = page.content.decode()
        assert "provider_clearing:stripe" in text and "deferred_revenue" in text
        assert "399.00 RUB" in text


class TestJournalExport:
    def test_csv_rows_are_the_postings_of_the_entries_of_the_range(self, login_as, journey):
        today = clock.now().astimezone(UTC).date()

        response = export(
            login_as("Accounting"), date_from=journey.paid_day, date_to=today, file_format="csv"
        )

        assert response.status_code == 200
        assert response["Content-Disposition"].endswith('.csv"')
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        postings = Posting.objects.select_related("entry", "account").order_by(
            "effective_at", "entry_id", "id"
        )
        assert [
            (int(row["entry_id"]), row["source"], row["account"], int(row["amount_minor"])) for row in rows
        ] == [
            (posting.entry_id, posting.entry.source, posting.account.code, posting.amount)
            for posting in postings
        ]
        for currency in ("RUB", "USD"):
            mine = [row for row in rows if row["currency"] == currency]
            assert sum(Decimal(row["debit"] or 0) for row in mine) == sum(
                Decimal(row["credit"] or 0) for row in mine
            )
        refund = next(
            row for row in rows if row["kind"] == "refund" and row["account"] == "provider_clearing:stripe"
        )
        assert (refund["debit"], refund["credit"], refund["payment_id"]) == (
            "",
            "100.00",
            str(journey.rubles.pk),
        )

    def test_xlsx_cells_hold_numbers_and_date_times(self, login_as, journey):
        today = clock.now().astimezone(UTC).date()

        response = export(
            login_as("Accounting"), date_from=journey.paid_day, date_to=today, file_format="xlsx"
        )

        sheet = load_workbook(io.BytesIO(response.content))["Journal"]
        header, *rows = list(sheet.values)
        assert len(rows) == Posting.objects.count()
        column = {name: index for index, name in enumerate(header)}
        capture = next(row for row in rows if row[column["source"]] == f"payment:{journey.rubles.pk}")
        assert isinstance(capture[column["amount_minor"]], int)
        assert capture[column["debit"]] == 399 or capture[column["credit"]] == 399
        paid_at = journey.rubles.paid_at.astimezone(UTC).replace(tzinfo=None)
        # Excel keeps a moment to the millisecond.
        assert abs(capture[column["effective_at_utc"]] - paid_at) < timedelta(milliseconds=1)

    def test_entries_outside_the_range_are_left_out(self, login_as, journey):
        day_before = journey.paid_day - timedelta(days=1)

        response = export(login_as("Accounting"), date_from=day_before, date_to=day_before, file_format="csv")

        assert list(csv.DictReader(io.StringIO(response.content.decode()))) == []

    def test_a_range_ending_before_it_starts_shows_the_form_again(self, login_as):
        today = clock.now().date()

        response = export(
            login_as("Accounting"), date_from=today, date_to=today - timedelta(days=1), file_format="csv"
        )

        assert response.status_code == 200
        assert response.context["form"].errors["date_to"]


def test_the_dashboard_charts_revenue_earned_from_the_ledger_beside_cash(login_as, journey):
    # The clock moved ten days on: the payments' month may be this one or the one before.
    page = login_as("Accounting").get("/admin/dashboard/").content.decode()

    assert "Revenue earned per month (ledger) · RUB" in page
    assert "Revenue earned per month (ledger) · USD" in page
    # Ten days of 9.99 USD earned (nothing refunded in dollars), in the month(s) they fell in:
    # the ledger's figures, not the cash.
    dollar_months = [
        row
        for row in revenue_by_month(date_from=journey.paid_day, date_to=clock.now().date())
        if row.currency == "USD" and row.revenue
    ]
    assert sum(row.revenue for row in dollar_months) == journey.usd_earned
    for row in dollar_months:
        assert format_money(row.revenue, "USD") in page
