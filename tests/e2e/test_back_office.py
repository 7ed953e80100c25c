"""Staff do their jobs in admin in a real browser: managers, support agents and accountants.

Each test signs in with the demo logins `seed_demo` creates, as a person would, and checks
what that person sees next to what the database and the Stripe sandbox then hold.
"""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import Page, expect

from accounts.tests.roles import roles_restore
from billing.management.commands.seed_demo import DEMO_PASSWORD
from billing.models import Subscription, SubscriptionStatus
from billing.pages import DEMO_VIEWER_ID
from core.audit import AuditAction
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from tariffs.models import PromoCode, Tariff
from tests.e2e.conftest import ARTIFACTS, Screens, Site, Storefront, wait_for

pytestmark = pytest.mark.e2e


@dataclass
class Admin:
    """The admin site as one staff member drives it."""

    site: Site
    page: Page
    screens: Screens

    def sign_in(self, username: str) -> None:
        """Sign in at the admin's login page with a demo login."""
        self.page.goto(self.site.url("/admin/login/?next=/admin/"))
        self.page.locator("#id_username").fill(username)
        self.page.locator("#id_password").fill(DEMO_PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.locator("#user-tools")).to_contain_text(f"Welcome, {username}.")

    def sign_out(self) -> None:
        """Sign out through the admin's own log-out button."""
        self.page.locator("#logout-form button").click()
        expect(self.page.get_by_text("Logged out")).to_be_visible()

    def open(self, url_name: str, *args: object) -> int:
        """Open an admin page by its URL name; return the HTTP status it answered with."""
        response = self.page.goto(self.site.url(reverse(url_name, args=args)))
        assert response is not None
        return response.status


@pytest.fixture
def admin_site(site: Site, page: Page, screens: Screens) -> Admin:
    """Return the admin driver of this test; the demo staff hold their roles."""
    roles_restore()
    call_command("seed_demo", base_url=site.base_url, stdout=io.StringIO())
    return Admin(site=site, page=page, screens=screens)


def paid_payment(site: Site, storefront: Storefront) -> Payment:
    """Subscribe the demo viewer to the monthly tariff with 4242 and return the settled payment."""
    storefront.open()
    storefront.subscribe("monthly")
    storefront.pay("4242 4242 4242 4242")
    storefront.wait_for_payment_received()
    site.wait_until_settled()
    return Payment.objects.get(subscription__account__user_id=DEMO_VIEWER_ID, status=PaymentStatus.SUCCEEDED)


def test_a_manager_creates_a_tariff_and_a_promo_code(admin_site: Admin):
    page = admin_site.page
    admin_site.sign_in("manager")

    admin_site.open("admin:tariffs_tariff_add")
    page.locator("#id_name").press_sequentially("Family quarterly")
    # The slug is filled in from the name, as the manager types it.
    expect(page.locator("#id_slug")).to_have_value("family-quarterly")
    page.locator("#id_description").fill("Four screens, billed every three months.")
    page.locator("#id_price").fill("999.00")
    page.locator("#id_currency").fill("RUB")
    page.locator("#id_period_count").fill("3")
    page.locator("#id_period_unit").select_option("month")
    page.locator("#id_trial_days").fill("7")
    admin_site.screens.take("manager-tariff-form")
    page.locator('input[name="_save"]').click()
    # A new price and a tariff going on the storefront are confirmed first.
    expect(page.locator(".confirm-summary")).to_contain_text("999.00 RUB every 3 months")
    page.get_by_role("button", name="Yes, save").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    tariff = Tariff.objects.get(slug="family-quarterly")
    assert (tariff.amount, tariff.currency, tariff.period_unit, tariff.period_count, tariff.trial_days) == (
        99900,
        "RUB",
        "month",
        3,
        7,
    )

    admin_site.open("admin:tariffs_promocode_add")
    page.locator("#id_code").fill("family20")
    page.locator("#id_kind").select_option("percent")
    page.locator("#id_percent_off").fill("20")
    page.locator("#id_duration").select_option("once")
    page.locator("#id_tariffs_from").select_option(label="Family quarterly (999.00 RUB)")
    page.locator("#id_tariffs_add").click()
    admin_site.screens.take("manager-promo-form")
    page.locator('input[name="_save"]').click()
    expect(page.locator(".confirm-summary")).to_contain_text("New promo code FAMILY20: 20% off")
    page.get_by_role("button", name="Yes, save").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    promo = PromoCode.objects.get(code="FAMILY20")
    assert (promo.kind, promo.percent_off, promo.duration) == ("percent", 20, "once")
    assert list(promo.tariffs.values_list("slug", flat=True)) == ["family-quarterly"]

    # The admin in Russian, and back.
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("#site-name")).to_have_text("Биллинг кинотеатра")
    expect(page.locator("h1")).to_have_text("Выберите промокод для изменения")
    admin_site.screens.take("manager-in-russian")
    page.get_by_role("button", name="English").click()
    expect(page.locator("h1")).to_have_text("Select promo code to change")


def refund_through_the_form(admin_site: Admin, payment: Payment, amount: str) -> None:
    """Refund `amount` (major units) of a payment from its admin page, confirming the summary."""
    page = admin_site.page
    admin_site.open("admin:payments_payment_change", payment.pk)
    page.get_by_role("link", name="Refund", exact=True).click()
    page.locator("#id_amount").fill(amount)
    page.locator("#id_reason").select_option("service_problem")
    page.locator("#id_comment").fill("Stream kept buffering on the evening of the final.")
    page.get_by_role("button", name="Review the refund").click()
    expect(page.locator(".refund-summary")).to_be_visible()
    admin_site.screens.take(f"support-confirm-{amount}")
    page.get_by_role("button", name="Yes, refund").click()
    expect(page.locator(".messagelist")).to_be_visible()


def payment_status_shown(admin_site: Admin, payment: Payment, label: str) -> bool:
    """Reload the payment's admin page; return whether it shows the status `label`."""
    admin_site.open("admin:payments_payment_change", payment.pk)
    return admin_site.page.locator(".field-status .readonly").inner_text().strip() == label


def test_a_support_agent_refunds_part_then_the_rest_and_cannot_edit_tariffs(
    site: Site, storefront: Storefront, admin_site: Admin
):
    payment = paid_payment(site, storefront)
    assert payment.amount == 39900
    admin_site.sign_in("support")

    refund_through_the_form(admin_site, payment, "100.00")
    site.wait_until_settled()
    wait_for(
        lambda: payment_status_shown(admin_site, payment, "partially refunded"),
        what="the payment page to show it partly refunded",
    )
    expect(admin_site.page.locator(".field-refunded_money .readonly")).to_have_text("100.00 RUB")
    admin_site.screens.take("support-partly-refunded")
    # A partial refund keeps access by default.
    assert site.viewer_get("/api/v1/access/")["has_access"] is True

    refund_through_the_form(admin_site, payment, "299.00")
    site.wait_until_settled()
    wait_for(
        lambda: payment_status_shown(admin_site, payment, "refunded"),
        what="the payment page to show it refunded in full",
    )
    expect(admin_site.page.get_by_role("link", name="Refund", exact=True)).to_have_count(0)
    admin_site.screens.take("support-fully-refunded")

    refunds = Refund.objects.filter(payment=payment).order_by("created_at")
    assert [(r.amount, r.status, r.end_access) for r in refunds] == [
        (10000, RefundStatus.SUCCEEDED, False),
        (29900, RefundStatus.SUCCEEDED, True),
    ]
    stripe_refunds = site.control.objects("refund")
    assert sorted(r["amount"] for r in stripe_refunds) == [10000, 29900]
    # Both refunds are in the audit log under the agent's name, with the reason given.
    logged = LogEntry.objects.filter(additional_data__action=AuditAction.REFUND_CREATE.value)
    assert sorted((e.actor.username, e.additional_data["reason"]) for e in logged) == [
        ("support", "service_problem: Stream kept buffering on the evening of the final."),
        ("support", "service_problem: Stream kept buffering on the evening of the final."),
    ]
    # The full refund ends access by default, and the subscription with it.
    wait_for(
        lambda: site.viewer_get("/api/v1/access/")["has_access"] is False,
        what="access to end after the full refund",
    )
    subscription = Subscription.objects.get(pk=payment.subscription_id)
    assert subscription.status == SubscriptionStatus.CANCELED

    tariff = Tariff.objects.get(slug="monthly")
    assert admin_site.open("admin:tariffs_tariff_change", tariff.pk) == 403
    assert admin_site.open("admin:tariffs_tariff_add") == 403


def test_an_accountant_exports_payments_opens_the_dashboard_and_cannot_refund(
    site: Site, storefront: Storefront, admin_site: Admin
):
    payment = paid_payment(site, storefront)
    page = admin_site.page
    admin_site.sign_in("accountant")

    # Export: this month's payments (the form's default range) as CSV.
    admin_site.open("admin:payments_payment_changelist")
    page.get_by_role("link", name="Export").click()
    page.locator("#id_format").select_option(label="csv")
    admin_site.screens.take("accountant-export-form")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Submit").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert [(r["id"], r["cinema_user_id"], r["status"], r["amount_minor"], r["currency"]) for r in rows] == [
        (str(payment.pk), DEMO_VIEWER_ID, "succeeded", "39900", "RUB")
    ]

    # The dashboard counts the payment in this month's revenue and in MRR.
    page.goto(site.url("/admin/dashboard/"))
    expect(page.locator("#content")).to_contain_text("399.00 RUB")
    expect(page.locator("svg").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    admin_site.screens.take("accountant-dashboard")

    # No refund: neither the button nor the form.
    admin_site.open("admin:payments_payment_change", payment.pk)
    expect(page.locator(".field-status .readonly")).to_have_text("succeeded")
    expect(page.get_by_role("link", name="Refund", exact=True)).to_have_count(0)
    assert admin_site.open("admin:payments_payment_refund", payment.pk) == 403
    assert not Refund.objects.exists()
