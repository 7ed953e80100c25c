"""A staff member who reads Russian finds the audit log, the extension form and the outbox in Russian.

The browser shows what the server sent plus what admin's scripts add (the date filters, the
calendar); no string of ours may be left in English, the days take the genitive ("6 декабря")
and money is written the Russian way (3 990,00 ₽). The check against the catalogue is the one
the completeness test uses (`accounts/tests/catalogue.py`).
"""

import pytest
from django.contrib.auth.models import User
from django.utils import dateformat, timezone, translation
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.tests.catalogue import PO_FILE, english_left, english_patterns, po_entries
from accounts.tests.russian_pages import PRICE_IN_RUSSIAN, back_office_with_history
from tests.e2e.conftest import Screens

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"  # a throwaway test login


def sign_in_in_russian(page: Page, live_server: LiveServer, username: str) -> None:
    """Sign in at the admin's login page, then switch the admin to Russian with its own button."""
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")


def test_the_audit_log_extension_and_outbox_have_no_english_of_ours(
    live_server: LiveServer, page: Page, screens: Screens
):
    staff = User.objects.create_superuser(username="olga", email="olga@example.com", password=PASSWORD)
    back_office = back_office_with_history(staff=staff)
    english_of_ours = english_patterns(po_entries(PO_FILE.read_text(encoding="utf-8")))
    sign_in_in_russian(page, live_server, "olga")

    left = {}
    for name, url in back_office.pages.items():
        response = page.goto(live_server.url + url)
        assert response is not None
        assert response.status == 200, name
        left[name] = english_left(page.content(), english_of_ours)
        if name in ("audit log", "extension form", "outbox"):
            screens.take(name.replace(" ", "-"))

    # The extension, filled in and sent to its confirmation step.
    page.goto(live_server.url + back_office.pages["extension form"])
    page.locator("#id_days").fill("5")
    page.locator("#id_reason").fill("Долго грузилось")
    page.locator('#extend_form input[type="submit"]').click()
    expect(page.locator('input[name="confirm"]')).to_have_count(1)
    screens.take("extension-confirmation")
    left["extension confirmation"] = english_left(page.content(), english_of_ours)

    assert {name: found for name, found in left.items() if found} == {}

    # Days in the genitive above the audit log, money the Russian way on a subscription.
    page.goto(live_server.url + back_office.pages["audit log, this month by day"])
    with translation.override("ru"):
        day = dateformat.format(timezone.localdate(), "j E")
    expect(page.locator("nav.toplinks")).to_contain_text(day)
    page.goto(live_server.url + back_office.pages["subscription"])
    expect(page.locator(".field-price .readonly")).to_have_text(PRICE_IN_RUSSIAN)
