"""A viewer pays a YooKassa tariff in a real browser; the worker settles, renews and refunds it there.

The acceptance of issue 12 end to end: the live server, the YooKassa sandbox sending its
notifications from 127.0.0.1, a real Celery worker and Chromium.
"""

import io
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from accounts.tests.roles import roles_restore
from billing.models import Subscription, SubscriptionStatus
from billing.pages import DEMO_VIEWER_ID
from core import clock
from payments.models import (
    Payment,
    PaymentKind,
    PaymentStatus,
    ProviderCustomer,
    ReceiptRegistration,
    Refund,
    RefundStatus,
    WebhookEvent,
    WebhookEventStatus,
)
from payments.sandbox.yookassa import YooKassaSandboxHandle
from tests.e2e.conftest import Screens, Site, Storefront, wait_for
from tests.e2e.test_back_office import Admin, refund_through_the_form

pytestmark = pytest.mark.e2e
SLUG = "monthly-yookassa"
SUCCEEDS = "5555555555554444"
DECLINED = "5555555555554600"  # insufficient_funds
THREE_D_SECURE = "5555555555554477"


def yookassa_settled(sandbox: YooKassaSandboxHandle) -> bool:
    """Return whether every notification is delivered and every stored event handled by the worker."""
    deliveries = sandbox.sandbox.notifier.deliveries()
    if any(delivery["status"] in ("pending", "in_flight") for delivery in deliveries):
        return False
    return not WebhookEvent.objects.filter(status=WebhookEventStatus.RECEIVED).exists()


def wait_until_yookassa_settled(sandbox: YooKassaSandboxHandle) -> None:
    wait_for(lambda: yookassa_settled(sandbox), what="YooKassa's notifications delivered and processed")


def sandbox_objects(sandbox: YooKassaSandboxHandle, kind: str) -> list[dict[str, Any]]:
    """Return the sandbox's payments or refunds, as its API lists them."""
    state = sandbox.sandbox.state
    with state.lock:
        listing = (
            state.list_payments({"limit": "100"})
            if kind == "payments"
            else state.list_refunds({"limit": "100"})
        )
    return list(listing["items"])


def to_yookassa_page(storefront: Storefront, sandbox: YooKassaSandboxHandle) -> None:
    """Subscribe to the YooKassa tariff from the storefront and go on to YooKassa's page."""
    page = storefront.page
    storefront.open_account()
    page.locator(f'article.tariff[data-slug="{SLUG}"]').get_by_role("button", name="Subscribe").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/checkout/review/")
    page.locator("#continue").click()
    page.wait_for_url(lambda url: url.startswith(sandbox.base_url + "/payments/confirm?orderId="))
    expect(page.get_by_role("button", name="Pay")).to_be_visible()
    storefront.screens.take("yookassa-page")


def pay(storefront: Storefront, card_number: str) -> None:
    storefront.pay(card_number, exp="12 / 30")


@pytest.fixture
def admin(yookassa_site: Site, page: Page, screens: Screens) -> Admin:
    roles_restore()
    call_command("seed_demo", base_url=yookassa_site.base_url, stdout=io.StringIO())
    return Admin(site=yookassa_site, page=page, screens=screens)


def test_paying_with_5555_gives_access_renews_through_the_saved_card_and_refunds_once(
    yookassa_site: Site, yookassa_sandbox: YooKassaSandboxHandle, storefront: Storefront, admin: Admin
):
    to_yookassa_page(storefront, yookassa_sandbox)
    pay(storefront, SUCCEEDS)
    storefront.wait_for_payment_received()
    wait_until_yookassa_settled(yookassa_sandbox)

    assert yookassa_site.viewer_get("/api/v1/access/")["has_access"] is True
    (shown,) = yookassa_site.viewer_get("/api/v1/payments/")["results"]
    assert (shown["provider"], shown["status"], shown["receipt_status"]) == (
        "yookassa",
        "succeeded",
        "succeeded",
    )
    first = Payment.objects.get(subscription__account__user_id=DEMO_VIEWER_ID)
    assert first.card_last4 == "4444"

    # The billing clock past the period end: the renewal charges the card saved at YooKassa.
    period_end = Subscription.objects.get(pk=first.subscription_id).current_period_end
    assert period_end is not None
    days = (period_end - clock.now()).days + 1
    call_command("billing_advance", days=days, stdout=io.StringIO())
    renewal = wait_for(
        lambda: Payment.objects.filter(kind=PaymentKind.RENEWAL, status=PaymentStatus.SUCCEEDED).first(),
        what="the renewal to be charged at YooKassa",
    )
    assert (renewal.provider, renewal.receipt_registration) == ("yookassa", ReceiptRegistration.SUCCEEDED)
    charged = [
        p for p in sandbox_objects(yookassa_sandbox, "payments") if p["id"] == renewal.provider_payment_id
    ]
    saved = ProviderCustomer.objects.get(account__user_id=DEMO_VIEWER_ID, provider="yookassa")
    assert charged[0]["payment_method"]["id"] == saved.payment_method_ref
    assert yookassa_site.viewer_get("/api/v1/access/")["has_access"] is True

    # A refund from admin reaches YooKassa once, with its receipt.
    admin.sign_in("support")
    refund_through_the_form(admin, first, "100.00")
    wait_until_yookassa_settled(yookassa_sandbox)
    refund = wait_for(
        lambda: Refund.objects.filter(payment=first, status=RefundStatus.SUCCEEDED).first(),
        what="the refund to succeed at YooKassa",
    )
    assert (refund.provider, refund.amount) == ("yookassa", 10000)
    refunds = sandbox_objects(yookassa_sandbox, "refunds")
    assert [(r["payment_id"], r["amount"]["value"], r.get("receipt_registration")) for r in refunds] == [
        (first.provider_payment_id, "100.00", "succeeded")
    ]


def test_a_declined_card_is_shown_and_gives_no_access(
    yookassa_site: Site, yookassa_sandbox: YooKassaSandboxHandle, storefront: Storefront
):
    to_yookassa_page(storefront, yookassa_sandbox)
    pay(storefront, DECLINED)

    storefront.wait_for_result("Your payment did not go through")
    wait_until_yookassa_settled(yookassa_sandbox)
    payment = Payment.objects.get(subscription__account__user_id=DEMO_VIEWER_ID)
    assert (payment.status, payment.failure_code) == (PaymentStatus.CANCELED, "insufficient_funds")
    assert yookassa_site.viewer_get("/api/v1/access/")["has_access"] is False


def test_a_3_d_secure_card_is_authenticated_on_the_page(
    yookassa_site: Site, yookassa_sandbox: YooKassaSandboxHandle, storefront: Storefront
):
    to_yookassa_page(storefront, yookassa_sandbox)
    pay(storefront, THREE_D_SECURE)

    page = storefront.page
    expect(page.get_by_role("heading", name="3-D Secure")).to_be_visible()
    storefront.screens.take("yookassa-3ds")
    page.get_by_role("button", name="Complete authentication").click()
    storefront.wait_for_payment_received()
    wait_until_yookassa_settled(yookassa_sandbox)

    assert yookassa_site.viewer_get("/api/v1/access/")["has_access"] is True
    assert Subscription.objects.get(account__user_id=DEMO_VIEWER_ID).status == SubscriptionStatus.ACTIVE
