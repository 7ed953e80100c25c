"""A viewer manages their subscription from the account page (the storefront), in a real browser.

The page uses the public API only. The existing features come first (terms on our checkout
pages, cancel / resume / autopay, payment history, a 390 px phone), then the self-service of
issue 14 (plan change with its preview, a scheduled downgrade withdrawn, a card update used by
the next renewal, a past-due renewal confirmed from the page, the pages in Russian).
"""

import shutil
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Browser, Dialog, Page, ViewportSize, expect

from billing.models import Subscription, SubscriptionStatus
from billing.pages import DEMO_VIEWER_ID
from core.money import format_money
from notifications.templatetags.notice_format import day
from payments.models import Payment, PaymentKind, PaymentStatus, Refund, RefundRequest, RefundStatus
from payments.services.refunds.viewer_requests import (
    refund_request_approve,
    refund_request_create,
    refund_request_reject,
)
from tariffs.tests.factories import PromoCodeFactory
from tests.e2e.conftest import ARTIFACTS, BROWSER_TIMEOUT_MS, SETTLE_TIMEOUT, Site, Storefront, wait_for

pytestmark = pytest.mark.e2e

PHONE: ViewportSize = {"width": 390, "height": 844}
SETTLE_MS = SETTLE_TIMEOUT * 1000


def the_subscription() -> Subscription:
    """Return the demo viewer's newest subscription."""
    return Subscription.objects.filter(account__user_id=DEMO_VIEWER_ID).latest("created_at")


def accept_dialogs(page: Page) -> None:
    """Answer every confirm() of the page with OK."""

    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.on("dialog", accept)


def fits_the_screen(page: Page) -> bool:
    """Return whether nothing makes the page wider than the window (no sideways scrolling)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def advance_billing_clock(days: int) -> None:
    """Move the billing clock forward and run the renewals that fell due, as `make run`'s demo does."""
    call_command("billing_advance", days=days, stdout=StringIO())


# --- What the viewer agrees to, and what they got --------------------------------------


def test_review_and_result_pages_state_the_price_per_period_and_the_next_charge(storefront: Storefront):
    page = storefront.page
    storefront.open_account()
    page.locator('article.tariff[data-slug="monthly"]').get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/checkout/review/**")
    terms = page.locator("#terms")
    expect(terms.locator("#terms-price")).to_have_text("399.00 RUB every month")
    expect(terms.locator("#terms-today")).to_have_text("To pay now: 399.00 RUB")
    expect(terms).to_contain_text("Renews automatically at 399.00 RUB every month until you cancel")
    storefront.screens.take("review-monthly")

    storefront.continue_to_payment()
    storefront.pay("4242 4242 4242 4242")
    storefront.wait_for_payment_received()
    subscription = the_subscription()
    expect(page.locator("#paid")).to_have_text("Paid: 399.00 RUB", timeout=SETTLE_MS)
    expect(page.locator("#next-charge")).to_have_text(
        f"Next charge: 399.00 RUB on {day(subscription.current_period_end)}."
    )
    storefront.screens.take("result-with-next-charge")


def test_a_trial_states_its_end_and_the_price_after_it_on_a_phone(storefront: Storefront):
    page = storefront.page
    page.set_viewport_size(PHONE)
    storefront.open_account()
    card = page.locator('article.tariff[data-slug="yearly"]')
    expect(card).to_contain_text("3,990.00 RUB every year")
    expect(card).to_contain_text("7-day free trial, then 3,990.00 RUB every year")
    card.get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/checkout/review/**")
    expect(page.locator("#terms-today")).to_have_text("Nothing to pay today: your card is saved for later.")
    expect(page.locator("#terms-details")).to_contain_text("Free for 7 days, until ")
    expect(page.locator("#terms-details")).to_contain_text("; then 3,990.00 RUB every year.")
    assert fits_the_screen(page)
    storefront.screens.take("review-trial-phone")

    storefront.continue_to_payment()
    storefront.pay("4242 4242 4242 4242")
    storefront.wait_for_result("Your free trial has started")
    subscription = the_subscription()
    assert subscription.status == SubscriptionStatus.TRIALING
    expect(page.locator("#paid")).to_have_text("Nothing was charged.", timeout=SETTLE_MS)
    expect(page.locator("#next-charge")).to_have_text(
        f"Next charge: 3,990.00 RUB on {day(subscription.trial_end)}."
    )
    assert fits_the_screen(page)
    storefront.screens.take("trial-started-phone")


def test_a_promo_code_typed_on_the_page_is_shown_with_its_discount_and_duration(storefront: Storefront):
    PromoCodeFactory(code="HALF", percent_off=50)  # 50% off the first period
    page = storefront.page
    storefront.open_account()
    page.get_by_label("Promo code").fill("half")
    page.locator('article.tariff[data-slug="monthly"]').get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/checkout/review/**")
    expect(page.locator("#terms-today")).to_have_text("To pay now: 199.50 RUB")
    expect(page.locator("#terms-details")).to_contain_text("Promo code HALF: 50% off the first period.")
    expect(page.locator("#terms-price")).to_have_text("399.00 RUB every month")
    storefront.screens.take("review-promo")
    storefront.continue_to_payment()
    assert Payment.objects.get(subscription=the_subscription()).amount == 19950


# --- The account panel: plan, next charge, autopay, cancel and resume, history ----------------


def test_a_viewer_who_left_the_payment_page_completes_the_payment_from_the_account_page(
    storefront: Storefront,
):
    page = storefront.page
    storefront.open_account()
    storefront.subscribe("monthly")
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url("**/checkout/cancel/**")
    expect(page.locator("h1")).to_have_text("You left the payment page")
    expect(page.locator("#terms-price")).to_have_text("399.00 RUB every month")
    storefront.screens.take("left-the-payment-page")
    page.get_by_role("link", name="Back to the cinema").click()

    account = page.locator("#account")
    expect(account.locator("#status")).to_have_text("pending payment")
    expect(account).to_contain_text("Your subscription starts once the payment is complete.")
    storefront.screens.take("account-pending")
    account.get_by_role("button", name="Complete payment").click()
    storefront.continue_to_payment()
    storefront.pay("4242 4242 4242 4242")
    storefront.wait_for_payment_received()
    assert Payment.objects.filter(subscription__account__user_id=DEMO_VIEWER_ID).count() == 1
    storefront.open_account()
    expect(account.locator("#status")).to_have_text("active")


def test_a_subscriber_manages_autopay_and_cancels_and_resumes_from_the_account_page(storefront: Storefront):
    page = storefront.page
    accept_dialogs(page)
    storefront.subscribe_and_pay("monthly", "4242 4242 4242 4242")
    subscription = the_subscription()
    period_end = day(subscription.current_period_end)

    storefront.open_account()
    account = page.locator("#account")
    expect(page.locator("#access")).to_have_text("Access: yes")
    expect(page.locator("#viewer")).to_have_text(f"Signed in as {DEMO_VIEWER_ID}")
    expect(account.locator("#plan")).to_have_text("Monthly · 399.00 RUB every month")
    expect(account.locator("#status")).to_have_text("active")
    expect(account.locator("#next-charge")).to_have_text(f"399.00 RUB on {period_end}")
    # A running subscription: no Subscribe anywhere, another plan is a switch.
    expect(page.get_by_role("button", name="Subscribe")).to_have_count(0)
    expect(page.locator('article.tariff[data-slug="monthly"]')).to_contain_text("Your plan")
    expect(
        page.locator('article.tariff[data-slug="yearly"]').get_by_role("button", name="Switch to this plan")
    ).to_be_visible()
    history = page.locator("#payments")
    expect(history).to_contain_text("399.00 RUB")
    expect(history).to_contain_text("succeeded")
    storefront.screens.take("account-active")

    account.get_by_role("button", name="Turn autopay off").click()
    expect(account.locator("#next-charge")).to_have_text(f"None: autopay is off, access until {period_end}")
    assert the_subscription().autopay is False
    account.get_by_role("button", name="Turn autopay on").click()
    expect(account.locator("#next-charge")).to_have_text(f"399.00 RUB on {period_end}")
    assert the_subscription().autopay is True

    account.get_by_role("button", name="Cancel subscription").click()
    expect(account).to_contain_text(f"Canceled: access until {period_end}.")
    expect(account.locator("#next-charge")).to_have_text(f"None: your subscription ends on {period_end}")
    assert the_subscription().cancel_at_period_end is True
    storefront.screens.take("account-canceled")
    account.get_by_role("button", name="Resume subscription").click()
    expect(account.get_by_role("button", name="Cancel subscription")).to_be_visible()
    assert the_subscription().cancel_at_period_end is False


def test_the_account_page_reads_well_on_a_phone(storefront: Storefront):
    page = storefront.page
    storefront.subscribe_and_pay("monthly", "4242 4242 4242 4242")
    page.set_viewport_size(PHONE)
    storefront.open_account()
    expect(page.locator("#account #plan")).to_be_visible()
    expect(page.locator("#payments table")).to_be_visible()
    assert fits_the_screen(page)
    # Every button and field has a name a screen reader can say.
    unnamed = page.evaluate(
        """Array.from(document.querySelectorAll('button, input, textarea, a'))
             .filter((e) => e.checkVisibility())
             .filter((e) => !(e.innerText || e.getAttribute('aria-label') || (e.labels && e.labels.length)))
             .map((e) => e.outerHTML)"""
    )
    assert unnamed == []
    storefront.screens.take("account-phone")


def test_a_viewer_asks_for_a_refund_and_reads_supports_refusal(storefront: Storefront):
    page = storefront.page
    storefront.subscribe_and_pay("monthly", "4242 4242 4242 4242")
    storefront.open_account()
    page.locator("#payments").get_by_role("button", name="Ask for a refund").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Why do you want this payment back?").fill("I subscribed by mistake.")
    storefront.screens.take("refund-request-form")
    dialog.get_by_role("button", name="Send the request").click()
    requests = page.locator("#refund-requests")
    expect(requests).to_contain_text("I subscribed by mistake.")
    expect(requests).to_contain_text("open")
    expect(page.locator("#payments").get_by_role("button", name="Ask for a refund")).to_have_count(0)

    refund_request_reject(
        refund_request=RefundRequest.objects.get(payment__subscription=the_subscription()),
        staff=User.objects.get(username="support"),
        note="The period has been watched.",
    )
    storefront.open_account()
    expect(requests).to_contain_text("rejected")
    expect(requests).to_contain_text("The period has been watched.")
    storefront.screens.take("refund-request-rejected")


def test_an_approved_refund_appears_on_the_payment_and_in_the_refunds_on_a_phone(storefront: Storefront):
    page = storefront.page
    page.set_viewport_size(PHONE)
    storefront.subscribe_and_pay("monthly", "4242 4242 4242 4242")
    payment = Payment.objects.get(subscription=the_subscription())
    refund_request = refund_request_create(
        account=payment.subscription.account, payment_id=payment.pk, reason="Not for me."
    )
    refund_request_approve(refund_request=refund_request, staff=User.objects.get(username="support"))
    storefront.site.wait_until_settled()
    wait_for(
        lambda: Refund.objects.filter(payment=payment, status=RefundStatus.SUCCEEDED).exists(),
        what="the refund to succeed",
    )
    storefront.open_account()
    expect(page.locator("#refunds")).to_contain_text("399.00 RUB")
    expect(page.locator("#refunds")).to_contain_text("succeeded")
    expect(page.locator("#refund-requests")).to_contain_text("approved")
    expect(page.locator("#payments")).to_contain_text("refunded")
    assert fits_the_screen(page)
    storefront.screens.take("refunded-phone")


# --- Plan changes ---------------------------------------------------------------------------


def test_upgrade_from_monthly_to_yearly_shows_the_preview_then_charges_and_starts_a_new_period(
    storefront: Storefront,
):
    page = storefront.page
    storefront.subscribe_and_pay("monthly", "4242 4242 4242 4242")
    storefront.open_account()
    page.locator('article.tariff[data-slug="yearly"]').get_by_role(
        "button", name="Switch to this plan"
    ).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("#change-terms")).to_contain_text("is charged now to your card on file")
    expect(dialog.locator("#change-terms")).to_contain_text("then renews at 3,990.00 RUB every year")
    preview = dialog.locator("#change-terms").inner_text()
    storefront.screens.take("upgrade-preview")
    # The preview changed nothing.
    assert the_subscription().tariff.slug == "monthly"
    assert not Payment.objects.filter(kind=PaymentKind.CHANGE).exists()

    dialog.get_by_role("button", name="Confirm the change").click()
    expect(page.locator("#message")).to_have_text("Your plan is changed.")
    storefront.site.wait_until_settled()
    subscription = the_subscription()
    change = Payment.objects.get(subscription=subscription, kind=PaymentKind.CHANGE)
    assert subscription.tariff.slug == "yearly"
    assert change.status == PaymentStatus.SUCCEEDED
    # What was charged is what the preview said.
    assert preview.startswith(f"{format_money(change.amount, change.currency, language='en')} is charged now")
    expect(page.locator("#account #plan")).to_have_text("Yearly · 3,990.00 RUB every year")
    expect(page.locator("#account #next-charge")).to_have_text(
        f"3,990.00 RUB on {day(subscription.current_period_end)}"
    )
    history = page.locator("#payments")
    expect(history).to_contain_text("Plan change")
    expect(history).to_contain_text(format_money(change.amount, change.currency, language="en"))
    storefront.screens.take("upgraded")


def test_a_scheduled_downgrade_is_shown_and_withdrawn(storefront: Storefront):
    page = storefront.page
    page.set_viewport_size(PHONE)
    storefront.subscribe_and_pay("yearly", "4242 4242 4242 4242", headline="Your free trial has started")
    storefront.open_account()
    page.locator('article.tariff[data-slug="monthly"]').get_by_role(
        "button", name="Switch to this plan"
    ).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("#change-terms")).to_contain_text("Nothing is charged now. Your plan changes on")
    storefront.screens.take("downgrade-preview")
    dialog.get_by_role("button", name="Confirm the change").click()
    scheduled = page.locator("#scheduled-change")
    expect(scheduled).to_contain_text("Changes to Monthly on")
    assert the_subscription().tariff.slug == "yearly"
    assert fits_the_screen(page)
    storefront.screens.take("downgrade-scheduled")

    page.get_by_role("button", name="Keep my current plan").click()
    expect(scheduled).to_have_count(0)
    assert the_subscription().tariff.slug == "yearly"
    storefront.screens.take("downgrade-withdrawn")


# --- The card on file -----------------------------------------------------------------------------


def test_an_updated_card_is_shown_and_charged_by_the_next_renewal(storefront: Storefront):
    page = storefront.page
    storefront.subscribe_and_pay("monthly", "4242 4242 4242 4242")
    storefront.open_account()
    expect(page.locator("#account #card")).to_contain_text("Visa •••• 4242")

    page.get_by_role("button", name="Update card").click()
    page.wait_for_url(lambda url: url.startswith(storefront.site.sandbox.base_url + "/checkout/"))
    storefront.screens.take("card-update-page")
    storefront.pay("5555 5555 5555 4444")
    storefront.wait_for_result("Your new card is saved")
    storefront.site.wait_until_settled()
    storefront.open_account()
    expect(page.locator("#account #card")).to_contain_text("Mastercard •••• 4444")

    advance_billing_clock(days=31)
    storefront.site.wait_until_settled()
    renewal = Payment.objects.get(subscription=the_subscription(), kind=PaymentKind.RENEWAL)
    assert (renewal.status, renewal.card_brand, renewal.card_last4) == (
        PaymentStatus.SUCCEEDED,
        "mastercard",
        "4444",
    )
    storefront.open_account()
    expect(page.locator("#payments")).to_contain_text("Renewal")
    storefront.screens.take("renewed-with-new-card")


# --- A renewal the bank wants confirmed ---------------------------------------------------------


def test_a_past_due_viewer_confirms_the_renewal_from_the_account_page(storefront: Storefront):
    page = storefront.page
    page.set_viewport_size(PHONE)
    storefront.open_account()
    storefront.subscribe("monthly")
    storefront.pay("4000 0027 6000 3184")  # asks for authentication on the page, and off-session later
    page.get_by_role("button", name="Complete authentication").click()
    storefront.wait_for_payment_received()
    storefront.site.wait_until_settled()

    advance_billing_clock(days=31)
    storefront.site.wait_until_settled()
    assert the_subscription().status == SubscriptionStatus.PAST_DUE
    storefront.open_account()
    expect(page.locator("#account #status")).to_have_text("past due")
    expect(page.locator("#account #next-charge")).to_have_text(
        "399.00 RUB, due now: waiting for your confirmation"
    )
    confirm = page.get_by_role("link", name="Confirm payment")
    expect(confirm).to_be_visible()
    assert fits_the_screen(page)
    storefront.screens.take("past-due-phone")

    confirm.click()
    page.wait_for_url(lambda url: url.startswith(storefront.site.sandbox.base_url + "/checkout/"))
    storefront.pay("4000 0027 6000 3184")
    page.get_by_role("button", name="Complete authentication").click()
    storefront.wait_for_payment_received()
    wait_for(lambda: the_subscription().status == SubscriptionStatus.ACTIVE, what="the renewal to be paid")
    storefront.site.wait_until_settled()
    storefront.open_account()
    expect(page.locator("#account #status")).to_have_text("active")
    expect(page.get_by_role("link", name="Confirm payment")).to_have_count(0)
    storefront.screens.take("confirmed-phone")


# --- In Russian -----------------------------------------------------------------------------------


def test_the_language_switch_turns_the_account_page_russian(storefront: Storefront):
    page = storefront.page
    storefront.open_account()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator('article.tariff[data-slug="monthly"] .price')).to_have_text(
        "399,00\u00a0₽ раз в месяц"
    )
    expect(page.get_by_role("button", name="English")).to_be_visible()
    storefront.screens.take("switched-to-russian")


def test_a_russian_viewer_sees_the_account_and_review_pages_in_russian(
    site: Site, browser: Browser, request: pytest.FixtureRequest
):
    # Texts that the catalogue has today (money, periods, "Refund requests", the language switch)
    # and the pages' own, which pass once locale/ru has them (see the report of issue 14).
    context = browser.new_context(locale="ru-RU", viewport=PHONE)
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    shots = ARTIFACTS / request.node.name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    try:
        page = context.new_page()
        page.goto(site.url("/storefront/"))
        expect(page.locator("html")).to_have_attribute("lang", "ru")
        card = page.locator('article.tariff[data-slug="monthly"]')
        expect(card.locator(".price")).to_have_text("399,00\u00a0₽ раз в месяц")
        expect(page.locator("#refund-requests-title")).to_have_text("Заявки на возврат")
        expect(page.get_by_role("button", name="English")).to_be_visible()
        # The page's own texts (to be filled in the catalogue).
        expect(page.locator("#account-title")).to_have_text("Ваша подписка")
        expect(card.get_by_role("button", name="Оформить подписку")).to_be_visible()
        expect(page.locator("#access")).to_have_text("Доступ: нет")
        page.screenshot(path=str(shots / "01-account-ru.png"), full_page=True)
        card.get_by_role("button", name="Оформить подписку").click()
        page.wait_for_url("**/checkout/review/**")
        expect(page.locator("#terms-price")).to_have_text("399,00\u00a0₽ раз в месяц")
        expect(page.locator("#terms-today")).to_have_text("К оплате сейчас: 399,00\u00a0₽")  # noqa: RUF001 - Russian
        expect(page.locator("h1")).to_have_text("Проверьте и оплатите")
        page.screenshot(path=str(shots / "02-review-ru.png"), full_page=True)
    finally:
        context.close()
