"""Where links lead on the account page, and what it says the next charge is, in a real browser.

The card-expiry email's link (`CARD_UPDATE_URL`, `/storefront/#payment-method`) lands on the
card line with *Update card* ready; a promo code still in effect shows in the next charge,
as the API's `next_charge` says it.
"""

import pytest
from playwright.sync_api import expect

from billing.models import Subscription
from billing.pages import DEMO_VIEWER_ID
from notifications.templatetags.notice_format import day
from tariffs.models import PromoDuration
from tariffs.tests.factories import PromoCodeFactory
from tests.e2e.conftest import Storefront

pytestmark = pytest.mark.e2e


def the_subscription() -> Subscription:
    return Subscription.objects.filter(account__user_id=DEMO_VIEWER_ID).latest("created_at")


def test_the_card_expiry_emails_link_opens_the_card_line_with_update_card_ready(storefront: Storefront):
    page = storefront.page
    storefront.subscribe_and_pay("monthly", "4242 4242 4242 4242")

    page.goto(storefront.site.url("/storefront/#payment-method"))
    expect(page.locator("#payment-method")).to_be_in_viewport()
    expect(page.locator("#account #card")).to_contain_text("Visa •••• 4242")
    expect(page.get_by_role("button", name="Update card")).to_be_focused()
    storefront.screens.take("card-link")


def test_a_discount_still_in_effect_is_in_the_next_charge(storefront: Storefront):
    PromoCodeFactory.create(
        code="THREEMONTHS", percent_off=20, duration=PromoDuration.REPEATING, duration_periods=3
    )
    page = storefront.page
    storefront.open_account()
    page.locator("#promo-code").fill("THREEMONTHS")
    storefront.subscribe("monthly")
    storefront.pay("4242 4242 4242 4242")
    storefront.wait_for_payment_received()
    storefront.site.wait_until_settled()

    storefront.open_account()
    period_end = day(the_subscription().current_period_end)
    expect(page.locator("#account #next-charge")).to_have_text(f"319.20 RUB on {period_end}")
    storefront.screens.take("discounted-next-charge")
