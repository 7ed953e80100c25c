"""An accountant downloads payments as XLSX in a real browser, and the sheet adds up.

The file is read back with openpyxl, as a spreadsheet would open it: the amounts must be number
cells whose sum is the takings, not text that looks like numbers.
"""

import io
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from django.utils import timezone

from billing.pages import DEMO_VIEWER_ID
from payments.models import Payment
from payments.tests.factories import PaymentFactory
from tariffs.models import Tariff
from tariffs.tests.factories import TariffFactory
from tests.e2e.conftest import Site, Storefront
from tests.e2e.test_back_office import Admin, admin_site, paid_payment  # noqa: F401 - admin_site is a fixture

pytestmark = pytest.mark.e2e


def test_an_accountant_downloads_an_xlsx_whose_amounts_sum(
    site: Site,
    storefront: Storefront,
    admin_site: Admin,  # noqa: F811 - the fixture imported above
):
    demo = paid_payment(site, storefront)
    half = TariffFactory(slug="half", name="Half Price", amount=19950, currency="RUB")
    other: Payment = PaymentFactory.create(
        subscription__tariff=half, subscription__account__email="bob@example.com", paid_at=timezone.now()
    )
    page = admin_site.page
    admin_site.sign_in("accountant")

    admin_site.open("admin:payments_payment_changelist")
    page.get_by_role("link", name="Export").click()
    page.locator("#id_format").select_option(label="xlsx")
    admin_site.screens.take("accountant-export-xlsx-form")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Submit").click()
    download = download_info.value

    assert download.suggested_filename.endswith(".xlsx")
    # Playwright keeps the download under a name without extension: read the bytes.
    book = openpyxl.load_workbook(io.BytesIO(Path(download.path()).read_bytes()))
    assert book.sheetnames == ["Payments"]
    header, *rows = list(book["Payments"].iter_rows())
    names = [cell.value for cell in header]
    by_id = {row[names.index("id")].value: dict(zip(names, row, strict=True)) for row in rows}
    assert set(by_id) == {str(demo.pk), str(other.pk)}
    amounts = [row["amount"] for row in by_id.values()]
    assert all(cell.data_type == "n" and cell.number_format == "#,##0.00" for cell in amounts)
    assert sum(cell.value for cell in amounts) == pytest.approx(399.00 + 199.50)
    mine = by_id[str(demo.pk)]
    assert mine["cinema_user_id"].value == DEMO_VIEWER_ID
    assert mine["email"].value == demo.subscription.account.email
    assert mine["tariff_name"].value == Tariff.objects.get(slug="monthly").name
    assert isinstance(mine["paid_at_utc"].value, datetime)
    assert by_id[str(other.pk)]["tariff_name"].value == "Half Price"
