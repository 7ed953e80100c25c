"""Support and accounting find payments and refunds in the admin, and change none of them."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from accounts.tests.factories import BillingAccountFactory
from billing.tests.factories import SubscriptionFactory
from payments.models import Payment, PaymentKind, PaymentStatus, Refund, RefundReason, RefundStatus
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

PAYMENTS_URL = reverse("admin:payments_payment_changelist")
REFUNDS_URL = reverse("admin:payments_refund_changelist")


def payment_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_change", args=[payment.pk])


def payment_of(user_id: str, email: str = "", **fields):
    account = BillingAccountFactory(user_id=user_id, email=email or f"{user_id}@example.com")
    return PaymentFactory(subscription=SubscriptionFactory(account=account), **fields)


def refund_of(payment: Payment, amount: int, **fields) -> Refund:
    return Refund.objects.create(payment=payment, amount=amount, currency=payment.currency, **fields)


def listed(response) -> list:
    return list(response.context["cl"].result_list)


class TestSupportFindsPayments:
    def test_by_provider_payment_id(self, login_as):
        wanted = payment_of("viewer-1", provider_payment_id="pi_3AbC")
        payment_of("viewer-2", provider_payment_id="pi_3AbCd")

        response = login_as("Support").get(PAYMENTS_URL, {"q": "pi_3AbC"})

        assert response.status_code == 200
        assert listed(response) == [wanted]

    def test_by_the_accounts_email(self, login_as):
        wanted = payment_of("viewer-1", email="anna@example.com")
        payment_of("viewer-2", email="hanna@example.com")

        response = login_as("Support").get(PAYMENTS_URL, {"q": "Anna@Example.com"})

        assert listed(response) == [wanted]

    def test_by_checkout_session_charge_cinema_user_id_and_payment_id(self, login_as):
        by_session = payment_of("viewer-1", provider_checkout_id="cs_test_1")
        by_charge = payment_of("viewer-2", provider_charge_id="ch_1")
        by_user = payment_of("viewer-3")
        by_id = payment_of("viewer-4")
        client = login_as("Support")

        found = {
            term: listed(client.get(PAYMENTS_URL, {"q": term}))
            for term in ("cs_test_1", "ch_1", "viewer-3", str(by_id.pk))
        }

        assert found == {
            "cs_test_1": [by_session],
            "ch_1": [by_charge],
            "viewer-3": [by_user],
            str(by_id.pk): [by_id],
        }

    def test_by_cinema_user_id_lists_every_payment_of_the_account(self, login_as):
        first = payment_of("viewer-1")
        renewal = PaymentFactory(subscription=first.subscription, kind=PaymentKind.RENEWAL)
        payment_of("viewer-11")

        response = login_as("Support").get(PAYMENTS_URL, {"q": "viewer-1"})

        assert set(listed(response)) == {first, renewal}

    def test_list_shows_amounts_as_money(self, login_as):
        payment_of("viewer-1", amount=39900, refunded_amount=10000, status=PaymentStatus.PARTIALLY_REFUNDED)

        content = login_as("Support").get(PAYMENTS_URL).content.decode()

        assert "399.00 RUB" in content
        assert "100.00 RUB" in content
        assert "viewer-1" in content

    def test_payment_page_lists_its_refunds(self, login_as):
        payment = payment_of("viewer-1", amount=39900)
        refund_of(payment, 12345, provider_refund_id="re_visible", status=RefundStatus.SUCCEEDED)

        content = login_as("Support").get(payment_url(payment)).content.decode()

        assert "re_visible" in content
        assert "123.45 RUB" in content


class TestAccountingFiltersPayments:
    def test_by_tariff_lists_only_that_tariffs_payments(self, login_as):
        monthly = payment_of("viewer-monthly")
        payment_of("viewer-yearly")
        tariff_id = monthly.subscription.tariff_id

        response = login_as("Accounting").get(PAYMENTS_URL, {"tariff": str(tariff_id)})

        assert listed(response) == [monthly]

    @pytest.mark.parametrize("value", ["²", "monthly", "-1"])
    def test_a_tariff_value_that_is_no_id_filters_nothing_and_breaks_nothing(self, login_as, value):
        payments = {payment_of("viewer-1"), payment_of("viewer-2")}

        response = login_as("Accounting").get(PAYMENTS_URL, {"tariff": value})

        assert response.status_code == 200
        assert set(listed(response)) == payments


class TestNobodyChangesPayments:
    def test_accounting_sees_payments_but_cannot_add_change_or_delete(self, login_as):
        payment = payment_of("viewer-1", status=PaymentStatus.SUCCEEDED)
        client = login_as("Accounting")

        changelist = client.get(PAYMENTS_URL)
        page = client.get(payment_url(payment))
        add = client.get(reverse("admin:payments_payment_add"))
        change = client.post(payment_url(payment), {"status": PaymentStatus.REFUNDED})
        delete = client.post(reverse("admin:payments_payment_delete", args=[payment.pk]), {"post": "yes"})

        assert changelist.status_code == 200
        assert listed(changelist) == [payment]
        assert changelist.context["has_add_permission"] is False
        assert changelist.context["action_form"] is None
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()
        assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.SUCCEEDED

    def test_even_a_superuser_cannot_add_or_delete_a_payment(self, client):
        payment = payment_of("viewer-1")
        client.force_login(User.objects.create_superuser(username="root", email="root@example.com"))

        add = client.get(reverse("admin:payments_payment_add"))
        delete = client.get(reverse("admin:payments_payment_delete", args=[payment.pk]))
        page = client.get(payment_url(payment))

        assert (add.status_code, delete.status_code) == (403, 403)
        assert 'name="_save"' not in page.content.decode()

    def test_manager_has_no_payments(self, login_as):
        assert login_as("Manager").get(PAYMENTS_URL).status_code == 403


class TestRefunds:
    def test_list_shows_refund_with_amount_as_money(self, login_as):
        payment = payment_of("viewer-1", amount=39900)
        refund_of(payment, 12345, provider_refund_id="re_1", reason=RefundReason.DUPLICATE)

        content = login_as("Accounting").get(REFUNDS_URL).content.decode()

        for text in ("123.45 RUB", "re_1", "duplicate payment"):
            assert text in content

    def test_search_by_provider_refund_id_and_cinema_user_id(self, login_as):
        first = refund_of(payment_of("viewer-1"), 100, provider_refund_id="re_1")
        second = refund_of(payment_of("viewer-2"), 200, provider_refund_id="re_2")
        client = login_as("Support")

        by_refund_id = listed(client.get(REFUNDS_URL, {"q": "re_2"}))
        by_user_id = listed(client.get(REFUNDS_URL, {"q": "viewer-1"}))

        assert (by_refund_id, by_user_id) == ([second], [first])

    def test_refunds_are_read_only(self, login_as):
        refund = refund_of(payment_of("viewer-1"), 100)
        client = login_as("Support")

        add = client.get(reverse("admin:payments_refund_add"))
        page = client.get(reverse("admin:payments_refund_change", args=[refund.pk]))

        assert add.status_code == 403
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()
