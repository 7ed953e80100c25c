"""Accounting downloads payments and refunds for a date range as CSV or XLSX; support cannot."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from core import clock
from payments.models import Payment, PaymentStatus, Refund, RefundReason, RefundStatus
from payments.tests.factories import PaymentFactory
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

PAYMENTS_EXPORT = "/admin/payments/payment/export/"
REFUNDS_EXPORT = "/admin/payments/refund/export/"
CSV_FORMAT, XLSX_FORMAT = "0", "1"


def paid(day: datetime, *, amount: int = 39900, currency: str = "RUB", tariff=None, **fields) -> Payment:
    """Return a payment paid (and created) at `day`, with Stripe ids."""
    tariff = tariff or TariffFactory(amount=amount, currency=currency)
    payment = PaymentFactory.create(
        subscription__tariff=tariff,
        paid_at=day,
        provider_payment_id=f"pi_{day:%m%d%H%M%S}_{amount}",
        provider_charge_id=f"ch_{day:%m%d%H%M%S}_{amount}",
        **fields,
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=day)
    payment.refresh_from_db()
    return payment


def export(client, url: str, fmt: str, date_from: str, date_to: str, **extra: str):
    return client.post(
        url, {"resource": "0", "format": fmt, "date_from": date_from, "date_to": date_to, **extra}
    )


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


class TestAccountingExportsPayments:
    def test_csv_has_the_payments_paid_in_the_range_with_their_money(self, login_as):
        tariff = TariffFactory(slug="monthly", amount=39900, currency="RUB")
        inside = paid(datetime(2026, 3, 1, 0, 0, tzinfo=UTC), tariff=tariff)
        last_day = paid(
            datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC),
            tariff=TariffFactory(slug="yen", amount=500, currency="JPY"),
            status=PaymentStatus.PARTIALLY_REFUNDED,
            refunded_amount=100,
        )
        paid(datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC), tariff=tariff)
        paid(datetime(2026, 4, 1, 0, 0, tzinfo=UTC), tariff=tariff)

        response = export(login_as("Accounting"), PAYMENTS_EXPORT, CSV_FORMAT, "2026-03-01", "2026-03-31")

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = {row["id"]: row for row in csv_rows(response)}
        assert set(rows) == {str(inside.pk), str(last_day.pk)}
        row = rows[str(inside.pk)]
        assert row["paid_at_utc"] == "2026-03-01T00:00:00+00:00"
        assert row["created_at_utc"] == "2026-03-01T00:00:00+00:00"
        assert row["cinema_user_id"] == inside.subscription.account.user_id
        assert (row["tariff"], row["kind"], row["status"]) == ("monthly", "initial", "succeeded")
        assert (row["amount_minor"], row["currency"], row["amount"]) == ("39900", "RUB", "399.00")
        assert (row["refunded_minor"], row["refunded"]) == ("0", "0.00")
        assert row["stripe_charge_id"] == inside.provider_charge_id
        assert row["stripe_payment_intent_id"] == inside.provider_payment_id
        yen = rows[str(last_day.pk)]
        assert (yen["amount_minor"], yen["amount"], yen["refunded"], yen["status"]) == (
            "500",
            "500",
            "100",
            "partially_refunded",
        )

    def test_the_range_can_apply_to_the_creation_date_instead(self, login_as):
        payment = paid(datetime(2026, 3, 10, tzinfo=UTC))
        Payment.objects.filter(pk=payment.pk).update(paid_at=datetime(2026, 4, 2, tzinfo=UTC))

        client = login_as("Accounting")
        by_paid = export(client, PAYMENTS_EXPORT, CSV_FORMAT, "2026-03-01", "2026-03-31")
        by_created = export(
            client, PAYMENTS_EXPORT, CSV_FORMAT, "2026-03-01", "2026-03-31", date_field="created_at"
        )

        assert csv_rows(by_paid) == []
        assert [row["id"] for row in csv_rows(by_created)] == [str(payment.pk)]

    def test_xlsx_has_the_same_rows(self, login_as):
        payment = paid(datetime(2026, 3, 5, 12, 30, tzinfo=UTC))

        response = export(login_as("Accounting"), PAYMENTS_EXPORT, XLSX_FORMAT, "2026-03-01", "2026-03-31")

        assert response.status_code == 200
        assert "spreadsheetml" in response["Content-Type"]
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
        assert header[:3] == ["id", "created_at_utc", "paid_at_utc"]
        [row] = rows
        values = dict(zip(header, row, strict=True))
        assert values["id"] == str(payment.pk)
        # Real cells, not text (payments/tests/test_export_cells.py checks them in detail).
        assert values["paid_at_utc"] == datetime(2026, 3, 5, 12, 30)
        assert values["amount"] == 399

    def test_the_changelist_filters_narrow_the_export_too(self, login_as):
        rub = paid(datetime(2026, 3, 5, tzinfo=UTC), currency="RUB")
        paid(datetime(2026, 3, 5, tzinfo=UTC), currency="EUR", amount=999)

        response = export(
            login_as("Accounting"), PAYMENTS_EXPORT + "?currency=RUB", CSV_FORMAT, "2026-03-01", "2026-03-31"
        )

        assert [row["id"] for row in csv_rows(response)] == [str(rub.pk)]

    @pytest.mark.parametrize(
        ("date_from", "date_to"),
        [
            ("", "2026-03-31"),
            ("2026-03-01", ""),
            ("2026-03-31", "2026-03-01"),
            # Days whose neighbours Python cannot count: refused, not a server error.
            ("2026-03-01", "9999-12-31"),
            ("0001-01-01", "2026-03-31"),
        ],
    )
    def test_no_export_without_a_valid_range(self, login_as, date_from, date_to):
        paid(datetime(2026, 3, 5, tzinfo=UTC))

        response = export(login_as("Accounting"), PAYMENTS_EXPORT, CSV_FORMAT, date_from, date_to)

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert b"errorlist" in response.content

    def test_the_form_asks_for_the_range_with_this_month_by_default(self, login_as):
        page = login_as("Accounting").get(PAYMENTS_EXPORT).content.decode()

        assert 'name="date_from"' in page
        assert 'name="date_to"' in page
        assert 'name="date_field"' in page
        formats = re.search(r'<select name="format".*?</select>', page, re.S).group(0).lower()
        assert ">csv<" in formats and ">xlsx<" in formats
        assert "json" not in formats

    def test_the_default_month_is_the_billing_clock_one(self, login_as):
        clock.advance(timedelta(days=40))
        today = clock.now().astimezone(UTC).date()

        page = login_as("Accounting").get(PAYMENTS_EXPORT).content.decode()

        assert re.search(rf'name="date_from"[^>]*value="{today.replace(day=1).isoformat()}"', page)
        assert re.search(rf'name="date_to"[^>]*value="{today.isoformat()}"', page)

    def test_query_count_does_not_grow_with_the_rows(self, login_as):
        client = login_as("Accounting")
        paid(datetime(2026, 3, 5, tzinfo=UTC))

        with CaptureQueriesContext(connection) as one_row:
            assert len(csv_rows(export(client, PAYMENTS_EXPORT, CSV_FORMAT, "2026-03-01", "2026-03-31"))) == 1
        for day in range(6, 26):
            paid(datetime(2026, 3, day, tzinfo=UTC))
        with CaptureQueriesContext(connection) as many_rows:
            assert (
                len(csv_rows(export(client, PAYMENTS_EXPORT, CSV_FORMAT, "2026-03-01", "2026-03-31"))) == 21
            )

        assert len(many_rows) == len(one_row)
        assert len(many_rows) <= 12


class TestAccountingExportsRefunds:
    def test_csv_has_the_refunds_of_the_range_with_who_asked_and_approved(self, login_as):
        payment = paid(datetime(2026, 3, 1, tzinfo=UTC), tariff=TariffFactory(slug="monthly"))
        asked = User.objects.create_user(username="sam")
        approver = User.objects.create_user(username="pat")
        refund = Refund.objects.create(
            payment=payment,
            amount=10050,
            currency="RUB",
            status=RefundStatus.SUCCEEDED,
            reason=RefundReason.SERVICE_PROBLEM,
            provider_refund_id="re_1",
            created_by=asked,
            approved_by=approver,
        )
        # Asked for in February, approved and paid back on 2 March: a March refund.
        Refund.objects.filter(pk=refund.pk).update(
            created_at=datetime(2026, 2, 27, 8, tzinfo=UTC), succeeded_at=datetime(2026, 3, 2, 8, tzinfo=UTC)
        )
        outside = Refund.objects.create(payment=payment, amount=1, currency="RUB", provider_refund_id="re_2")
        Refund.objects.filter(pk=outside.pk).update(
            created_at=datetime(2026, 3, 31, tzinfo=UTC), succeeded_at=datetime(2026, 4, 1, tzinfo=UTC)
        )

        client = login_as("Accounting")
        response = export(client, REFUNDS_EXPORT, CSV_FORMAT, "2026-03-01", "2026-03-31")

        [row] = csv_rows(response)
        assert row["id"] == str(refund.pk)
        assert row["created_at_utc"] == "2026-02-27T08:00:00+00:00"
        assert row["succeeded_at_utc"] == "2026-03-02T08:00:00+00:00"
        assert (row["payment_id"], row["tariff"]) == (str(payment.pk), "monthly")
        assert row["cinema_user_id"] == payment.subscription.account.user_id
        assert (row["amount_minor"], row["amount"], row["currency"]) == ("10050", "100.50", "RUB")
        assert (row["status"], row["reason"], row["stripe_refund_id"]) == (
            "succeeded",
            "service_problem",
            "re_1",
        )
        assert row["stripe_charge_id"] == payment.provider_charge_id
        assert (row["created_by"], row["approved_by"]) == ("sam", "pat")
        # By the date asked for instead, March holds the other one.
        by_creation = export(
            client,
            REFUNDS_EXPORT,
            CSV_FORMAT,
            "2026-03-01",
            "2026-03-31",
            date_field="created_at",
        )
        assert [r["id"] for r in csv_rows(by_creation)] == [str(outside.pk)]

    def test_query_count_does_not_grow_with_the_rows(self, login_as):
        client = login_as("Accounting")
        payment = paid(datetime(2026, 3, 1, tzinfo=UTC))
        staff = User.objects.create_user(username="sam")

        def refunds(count: int) -> None:
            for _ in range(count):
                Refund.objects.create(
                    payment=payment,
                    amount=1,
                    currency="RUB",
                    created_by=staff,
                    approved_by=staff,
                    succeeded_at=datetime(2026, 3, 2, tzinfo=UTC),
                )

        refunds(1)
        with CaptureQueriesContext(connection) as one_row:
            export(client, REFUNDS_EXPORT, CSV_FORMAT, "2000-01-01", "2100-01-01")
        refunds(15)
        with CaptureQueriesContext(connection) as many_rows:
            assert len(csv_rows(export(client, REFUNDS_EXPORT, CSV_FORMAT, "2000-01-01", "2100-01-01"))) == 16

        assert len(many_rows) == len(one_row)


class TestSupportCannotExport:
    @pytest.mark.parametrize("url", [PAYMENTS_EXPORT, REFUNDS_EXPORT])
    def test_export_is_forbidden(self, login_as, url):
        paid(datetime(2026, 3, 5, tzinfo=UTC))
        client = login_as("Support")

        assert client.get(url).status_code == 403
        assert export(client, url, CSV_FORMAT, "2026-03-01", "2026-03-31").status_code == 403

    @pytest.mark.parametrize("changelist", ["/admin/payments/payment/", "/admin/payments/refund/"])
    def test_changelist_shows_no_export_button_to_support_but_does_to_accounting(self, client, changelist):
        support = User.objects.create_user(username="support", is_staff=True)
        support.groups.add(Group.objects.get(name="Support"))
        accountant = User.objects.create_user(username="accountant", is_staff=True)
        accountant.groups.add(Group.objects.get(name="Accounting"))

        client.force_login(support)
        for_support = client.get(changelist)
        client.force_login(accountant)
        for_accounting = client.get(changelist)

        assert for_support.status_code == 200
        assert "export_link" not in for_support.content.decode()
        assert "export_link" in for_accounting.content.decode()

    def test_no_import_is_offered_to_anyone(self, login_as):
        client = login_as("Accounting")

        with pytest.raises(NoReverseMatch):
            reverse("admin:payments_payment_import")
        assert "import_link" not in client.get("/admin/payments/payment/").content.decode()
