"""A manager types a price the Russian way in a real browser, reads it back in words, and confirms it."""

import pytest
from playwright.sync_api import Browser, expect

from tariffs.models import Tariff
from tests.e2e.conftest import BROWSER_TIMEOUT_MS, Site
from tests.e2e.test_back_office import Admin, admin_site  # noqa: F401 - the fixture, reused

pytestmark = pytest.mark.e2e


def test_a_manager_types_999_comma_00_and_gets_999_roubles(admin_site: Admin):  # noqa: F811 - fixture
    page = admin_site.page
    admin_site.sign_in("manager")

    admin_site.open("admin:tariffs_tariff_add")
    page.locator("#id_name").press_sequentially("Family quarterly")
    expect(page.locator("#id_slug")).to_have_value("family-quarterly")
    page.locator("#id_name_ru").fill("Семейный на квартал")
    # A text box, not a number box: the browser keeps the comma as typed.
    expect(page.locator("#id_price")).to_have_attribute("type", "text")
    page.locator("#id_price").fill("999,00")
    page.locator("#id_currency").fill("RUB")
    page.locator("#id_period_count").fill("3")
    page.locator("#id_period_unit").select_option("month")
    admin_site.screens.take("manager-types-999-comma-00")
    page.locator('input[name="_save"]').click()

    summary = page.locator(".confirm-summary")
    expect(summary).to_contain_text("New tariff “Family quarterly” at 999.00 RUB every 3 months.")
    expect(summary).to_contain_text("goes on the storefront at once")
    admin_site.screens.take("manager-confirms-the-price")
    assert not Tariff.objects.filter(slug="family-quarterly").exists()

    page.get_by_role("button", name="Yes, save").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    tariff = Tariff.objects.get(slug="family-quarterly")
    assert (tariff.amount, tariff.currency, tariff.period_count, tariff.is_active) == (99900, "RUB", 3, True)
    assert tariff.price_display == "999.00 RUB"


def test_an_ambiguous_price_is_refused_on_the_form(admin_site: Admin):  # noqa: F811 - fixture
    page = admin_site.page
    admin_site.sign_in("manager")

    admin_site.open("admin:tariffs_tariff_add")
    page.locator("#id_name").press_sequentially("Typo")
    expect(page.locator("#id_slug")).to_have_value("typo")
    page.locator("#id_price").fill("1,999.00")
    page.locator("#id_currency").fill("RUB")
    page.locator('input[name="_save"]').click()

    expect(page.locator(".errorlist")).to_contain_text(
        "Use either a point or a comma before the decimals, not both"
    )
    expect(page.locator("#id_price")).to_have_value("1,999.00")
    assert not Tariff.objects.filter(slug="typo").exists()


def test_a_russian_viewer_sees_the_russian_tariff_names_on_the_storefront(site: Site, browser: Browser):
    description_ru = "Все фильмы и сериалы."  # noqa: RUF001 - Russian
    Tariff.objects.filter(slug="monthly").update(name_ru="Месячный", description_ru=description_ru)
    context = browser.new_context(locale="ru-RU")
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(site.url("/storefront/"))
        card = page.locator('article.tariff[data-slug="monthly"]')
        expect(card.locator("h2")).to_have_text("Месячный")
        expect(card).to_contain_text(description_ru)
    finally:
        context.close()
