"""Accounting's XLSX exports are sheets one can sum: numbers, date-times, a named sheet, who and what.

Each test exports through admin as an accountant and reads the file back with openpyxl, the way
a spreadsheet would open it.
"""

import io
from datetime import UTC, datetime

import openpyxl
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import Payment, PaymentStatus, Refund, RefundReason, RefundStatus
from payments.tests.factories import PaymentFactory
from payments.tests.test_exports import (
    CSV_FORMAT,
    PAYMENTS_EXPORT,
    REFUNDS_EXPORT,
    XLSX_FORMAT,
    csv_rows,
    export,
)
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db


def paid(day: datetime, *, email: str, tariff, **fields) -> Payment:
    """Return a payment of `tariff`'s price paid (and created) at `day` by the viewer `email`."""
    payment = PaymentFactory.create(
        subscription__tariff=tariff,
        subscription__account__email=email,
        paid_at=day,
        provider_charge_id=f"ch_{email}",
        **fields,
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=day)
    payment.refresh_from_db()
    return payment


def sheet_of(response) -> openpyxl.worksheet.worksheet.Worksheet:
    assert response.status_code == 200
    assert "spreadsheetml" in response["Content-Type"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert len(book.sheetnames) == 1
    return book.active


def rows_by(sheet, key: str) -> dict[str, dict[str, openpyxl.cell.cell.Cell]]:
    """Return the sheet's data rows as {column name: cell}, by the value of column `key`."""
    header, *rows = list(sheet.iter_rows())
    names = [cell.value for cell in header]
    by_name = [dict(zip(names, row, strict=True)) for row in rows]
    return {str(row[key].value): row for row in by_name}


@pytest.fixture
def monthly():
    return TariffFactory(slug="monthly", name="Monthly Premium", amount=39900, currency="RUB")


@pytest.fixture
def yearly():
    return TariffFactory(slug="yearly", name="Yearly Premium", amount=19950, currency="RUB")


class TestPaymentsSheet:
    def test_amounts_are_numbers_that_sum_to_the_takings(self, login_as, monthly, yearly):
        paid(datetime(2026, 3, 2, 9, 15, tzinfo=UTC), email="ann@example.com", tariff=monthly)
        paid(datetime(2026, 3, 3, tzinfo=UTC), email="bob@example.com", tariff=yearly)
        paid(
            datetime(2026, 3, 4, tzinfo=UTC),
            email="cid@example.com",
            tariff=monthly,
            status=PaymentStatus.PARTIALLY_REFUNDED,
            refunded_amount=10050,
        )

        sheet = sheet_of(
            export(login_as("Accounting"), PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31")
        )

        rows = rows_by(sheet, "email").values()
        amounts = [row["amount"] for row in rows]
        refunded = [row["refunded"] for row in rows]
        assert all(cell.data_type == "n" for cell in amounts + refunded)
        assert all(cell.number_format == "#,##0.00" for cell in amounts + refunded)
        assert sum(cell.value for cell in amounts) == pytest.approx(399.00 + 199.50 + 399.00)
        assert sum(cell.value for cell in refunded) == pytest.approx(100.50)
        assert sum(row["amount_minor"].value for row in rows) == 39900 + 19950 + 39900

    def test_the_sheet_is_named_and_has_the_viewer_and_the_tariff(self, login_as, monthly):
        payment = paid(datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC), email="ann@example.com", tariff=monthly)

        sheet = sheet_of(
            export(login_as("Accounting"), PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31")
        )

        assert sheet.title == "Payments"
        row = rows_by(sheet, "id")[str(payment.pk)]
        assert row["email"].value == "ann@example.com"
        assert (row["tariff"].value, row["tariff_name"].value) == ("monthly", "Monthly Premium")
        assert row["cinema_user_id"].value == payment.subscription.account.user_id

    def test_moments_are_utc_datetime_cells(self, login_as, monthly):
        payment = paid(datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC), email="ann@example.com", tariff=monthly)

        sheet = sheet_of(
            export(login_as("Accounting"), PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31")
        )

        row = rows_by(sheet, "id")[str(payment.pk)]
        for column in ("paid_at_utc", "created_at_utc"):
            assert row[column].is_date
            # Excel has no time zones: the cell holds the UTC time, as the column name says.
            assert row[column].value == datetime(2026, 3, 2, 9, 15, 30)
            assert row[column].number_format == "yyyy-mm-dd hh:mm:ss"

    def test_a_zero_decimal_currency_shows_no_decimals(self, login_as):
        yen = TariffFactory(slug="yen", amount=500, currency="JPY")
        paid(datetime(2026, 3, 2, tzinfo=UTC), email="ken@example.com", tariff=yen)

        sheet = sheet_of(
            export(login_as("Accounting"), PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31")
        )

        cell = rows_by(sheet, "email")["ken@example.com"]["amount"]
        assert (cell.value, cell.data_type, cell.number_format) == (500, "n", "#,##0")

    def test_text_that_looks_like_a_formula_stays_text(self, login_as, monthly):
        paid(datetime(2026, 3, 2, tzinfo=UTC), email="=1+2@example.com", tariff=monthly)

        sheet = sheet_of(
            export(login_as("Accounting"), PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31")
        )

        [row] = rows_by(sheet, "id").values()
        assert (row["email"].value, row["email"].data_type) == ("=1+2@example.com", "s")

    def test_csv_has_the_same_columns_as_readable_text(self, login_as, monthly):
        payment = paid(datetime(2026, 3, 2, 9, 15, tzinfo=UTC), email="ann@example.com", tariff=monthly)
        client = login_as("Accounting")

        [row] = csv_rows(export(client, PAYMENTS_EXPORT, CSV_FORMAT, "2026-03-01", "2026-03-31"))
        sheet = sheet_of(export(client, PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31"))

        assert list(row) == [cell.value for cell in next(sheet.iter_rows(max_row=1))]
        assert row["id"] == str(payment.pk)
        assert (row["email"], row["tariff_name"]) == ("ann@example.com", "Monthly Premium")
        assert (row["amount"], row["refunded"]) == ("399.00", "0.00")
        assert row["paid_at_utc"] == "2026-03-02T09:15:00+00:00"

    def test_xlsx_query_count_does_not_grow_with_the_rows(self, login_as, monthly):
        client = login_as("Accounting")
        paid(datetime(2026, 3, 1, tzinfo=UTC), email="first@example.com", tariff=monthly)

        with CaptureQueriesContext(connection) as one_row:
            export(client, PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31")
        for day in range(2, 22):
            paid(
                datetime(2026, 3, day, tzinfo=UTC),
                email=f"v{day}@example.com",
                tariff=TariffFactory(name=f"Plan {day}"),
            )
        with CaptureQueriesContext(connection) as many_rows:
            sheet = sheet_of(export(client, PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31"))

        assert sheet.max_row == 1 + 21
        assert len(many_rows) == len(one_row)


class TestRefundsSheet:
    def test_refunds_sheet_sums_and_names_the_viewer_and_tariff(self, login_as, monthly):
        payment = paid(datetime(2026, 3, 1, tzinfo=UTC), email="ann@example.com", tariff=monthly)
        staff = User.objects.create_user(username="sam")
        made = []
        for amount, when in (
            (10050, datetime(2026, 3, 2, 8, tzinfo=UTC)),
            (5000, datetime(2026, 3, 9, tzinfo=UTC)),
        ):
            refund = Refund.objects.create(
                payment=payment,
                amount=amount,
                currency="RUB",
                status=RefundStatus.SUCCEEDED,
                reason=RefundReason.SERVICE_PROBLEM,
                created_by=staff,
            )
            Refund.objects.filter(pk=refund.pk).update(created_at=when, succeeded_at=when)
            made.append(refund)

        sheet = sheet_of(
            export(login_as("Accounting"), REFUNDS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31")
        )

        assert sheet.title == "Refunds"
        rows = rows_by(sheet, "id")
        assert set(rows) == {str(refund.pk) for refund in made}
        amounts = [row["amount"] for row in rows.values()]
        assert all(cell.data_type == "n" and cell.number_format == "#,##0.00" for cell in amounts)
        assert sum(cell.value for cell in amounts) == pytest.approx(150.50)
        first = rows[str(made[0].pk)]
        assert first["succeeded_at_utc"].is_date
        assert first["succeeded_at_utc"].value == datetime(2026, 3, 2, 8)
        assert (first["email"].value, first["tariff_name"].value) == ("ann@example.com", "Monthly Premium")
        assert (first["payment_id"].value, first["created_by"].value) == (str(payment.pk), "sam")
        # Not approved by anyone: a blank cell, neither "None" nor an empty text.
        assert first["approved_by"].value is None
