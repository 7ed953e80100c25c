"""A viewer subscribes in a real browser; the Celery worker settles what Stripe reports."""

import pytest
from playwright.sync_api import Route, expect

from billing.models import SubscriptionStatus
from billing.pages import DEMO_VIEWER_ID
from payments.models import Payment, PaymentStatus, WebhookEvent, WebhookEventStatus
from tests.e2e.conftest import Site, Storefront, poll, wait_for

pytestmark = pytest.mark.e2e


def processed(event_type: str) -> WebhookEvent | None:
    """Return the stored event of a type once the worker has processed it."""
    return WebhookEvent.objects.filter(type=event_type, status=WebhookEventStatus.PROCESSED).first()


def test_paying_with_4242_in_the_browser_gives_access(site: Site, storefront: Storefront):
    page = storefront.page
    # Our return page re-reads the checkout from Stripe and could settle it itself. Hand the
    # sandbox's answer to Pay (the redirect to that page) to the browser only once the viewer
    # has access, so the activation can only have come from the worker. (The handler runs in
    # Playwright's event loop, so it asks the API over HTTP instead of using the ORM.)
    access_on_return: list[bool] = []

    def after_the_worker(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        # No failing here: an unanswered route would hang the browser; the test asserts below.
        access_on_return.append(poll(lambda: site.viewer_get("/api/v1/access/")["has_access"]))
        route.fulfill(response=answer)

    page.route(lambda url: url.startswith(site.sandbox.base_url + "/checkout/"), after_the_worker)

    storefront.open()
    storefront.subscribe("monthly")
    storefront.pay("4242 4242 4242 4242")
    storefront.wait_for_payment_received()
    expect(page.locator("#retry")).to_be_hidden()

    assert access_on_return == [True], "the worker had not granted access when the viewer came back"
    access = wait_for(
        lambda: (body := site.viewer_get("/api/v1/access/"))["has_access"] and body,
        what="/api/v1/access/ to grant access",
    )
    assert access["subscription"]["status"] == "active"
    page.get_by_role("link", name="Back to the cinema").click()
    expect(page.locator("#access")).to_have_text("Access: yes")
    storefront.screens.take("storefront-with-access")

    site.wait_until_settled()
    payment = Payment.objects.get(subscription__account__user_id=DEMO_VIEWER_ID)
    assert (payment.status, payment.card_brand, payment.card_last4) == (
        PaymentStatus.SUCCEEDED,
        "visa",
        "4242",
    )
    assert payment.amount == 39900
    assert payment.subscription.status == SubscriptionStatus.ACTIVE
    completed = WebhookEvent.objects.get(type="checkout.session.completed")
    assert completed.object_id == payment.provider_checkout_id
    assert (completed.status, completed.attempts) == (WebhookEventStatus.PROCESSED, 1)
    assert "Task payments.tasks.process_webhook_event[" in site.worker.output(since=site.worker.mark)


def test_a_declined_card_keeps_the_viewer_on_the_payment_page_without_access(
    site: Site, storefront: Storefront
):
    page = storefront.page
    storefront.open()
    checkout_url = storefront.subscribe("monthly")
    storefront.pay("4000 0000 0000 0002")

    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    storefront.screens.take("declined")
    assert page.url == checkout_url
    expect(page.get_by_role("button", name="Pay")).to_be_visible()

    failed = wait_for(lambda: processed("payment_intent.payment_failed"), what="the decline to be handled")
    site.wait_until_settled()
    payment = Payment.objects.get(subscription__account__user_id=DEMO_VIEWER_ID)
    assert failed.object_id == payment.provider_payment_id
    assert (payment.status, payment.failure_code) == (PaymentStatus.PENDING, "generic_decline")
    assert payment.subscription.status == SubscriptionStatus.PENDING
    assert site.viewer_get("/api/v1/access/")["has_access"] is False
    page.goto(site.url("/storefront/"))
    expect(page.locator("#access")).to_have_text("Access: no")
    storefront.screens.take("storefront-without-access")


def test_subscribe_works_where_the_page_is_not_a_secure_context(site: Site, storefront: Storefront):
    # Over plain http from an address other than localhost, crypto.randomUUID does not exist.
    storefront.page.add_init_script(
        "Object.defineProperty(Crypto.prototype, 'randomUUID', {value: undefined})"
    )
    storefront.open()
    checkout_url = storefront.subscribe("monthly")
    assert checkout_url.startswith(site.sandbox.url("/checkout/cs_"))
