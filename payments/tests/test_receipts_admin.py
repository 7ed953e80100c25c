"""Accounting lists the payments whose 54-FZ receipt failed to register, sees each one's receipt and exports both."""

from datetime import UTC, datetime

import pytest

from payments.models import ReceiptRegistration
from payments.tests.test_admin import PAYMENTS_URL, listed, payment_of, payment_url
from payments.tests.test_exports import CSV_FORMAT, PAYMENTS_EXPORT, csv_rows, export, paid

pytestmark = pytest.mark.django_db


def test_accounting_lists_the_payments_whose_receipt_failed_to_register(login_as):
    failed = payment_of("viewer-1", provider="yookassa", receipt_registration=ReceiptRegistration.CANCELED)
    payment_of("viewer-2", provider="yookassa", receipt_registration=ReceiptRegistration.SUCCEEDED)
    payment_of("viewer-3")  # Stripe: no receipt at all

    response = login_as("Accounting").get(PAYMENTS_URL, {"receipt_registration__exact": "canceled"})

    assert response.status_code == 200
    assert listed(response) == [failed]


def test_a_payment_page_shows_its_provider_and_receipt(login_as):
    payment = payment_of("viewer-1", provider="yookassa", receipt_registration=ReceiptRegistration.CANCELED)

    page = login_as("Accounting").get(payment_url(payment))

    assert page.status_code == 200
    text = page.content.decode()
    assert "YooKassa" in text and "failed to register" in text


def test_the_payments_list_filters_by_provider(login_as):
    yookassa = payment_of("viewer-1", provider="yookassa")
    payment_of("viewer-2")

    response = login_as("Support").get(PAYMENTS_URL, {"provider__exact": "yookassa"})

    assert listed(response) == [yookassa]


def test_the_payments_export_says_whose_each_payment_is_and_its_receipt(login_as):
    stripe = paid(datetime(2026, 3, 2, tzinfo=UTC))
    yookassa = paid(
        datetime(2026, 3, 3, tzinfo=UTC),
        provider="yookassa",
        receipt_registration=ReceiptRegistration.CANCELED,
    )

    response = export(login_as("Accounting"), PAYMENTS_EXPORT, CSV_FORMAT, "2026-03-01", "2026-03-31")

    rows = {row["id"]: row for row in csv_rows(response)}
    assert (rows[str(stripe.pk)]["provider"], rows[str(stripe.pk)]["receipt_status"]) == ("stripe", "")
    assert (rows[str(yookassa.pk)]["provider"], rows[str(yookassa.pk)]["receipt_status"]) == (
        "yookassa",
        "canceled",
    )
    # The columns accounting already reads keep their names and places; the new ones come last.
    assert list(rows[str(stripe.pk)])[-3:] == ["stripe_charge_id", "provider", "receipt_status"]
