"""Support's one screen on a viewer: the account's page in admin, and finding it by a part of an email or id."""

import uuid

import pytest
from django.urls import reverse

from accounts.admin import account_ids_matching
from accounts.models import BillingAccount
from accounts.tests.factories import BillingAccountFactory
from accounts.tests.roles import staff_member
from billing.models import SubscriptionStatus
from billing.tests.factories import SubscriptionFactory
from notifications.models import Notice, NoticeKind, OutboxEvent
from payments.models import PaymentStatus, Refund, RefundRequest, RefundStatus
from payments.services.cancellation import subscription_cancel_by_staff
from payments.tests.factories import PaymentFactory, ProviderCustomerFactory

pytestmark = pytest.mark.django_db
changelist_url = reverse("admin:accounts_billingaccount_changelist")


def change_url(account: BillingAccount) -> str:
    return reverse("admin:accounts_billingaccount_change", args=[account.pk])


@pytest.fixture
def agent(client):
    client.force_login(staff_member("Support", "agent"))
    return client


def history(account, n):
    """Give an account `n` ended subscriptions, each paid, refunded, asked about, emailed and evented."""
    for i in range(n):
        subscription = SubscriptionFactory(account=account, status=SubscriptionStatus.EXPIRED)
        payment = PaymentFactory(subscription=subscription, status=PaymentStatus.PARTIALLY_REFUNDED)
        refund = Refund.objects.create(
            payment=payment, amount=1000, currency=payment.currency, status=RefundStatus.SUCCEEDED
        )
        RefundRequest.objects.create(payment=payment, account=account, reason=f"request {i}", refund=refund)
        Notice.objects.create(
            kind=NoticeKind.EXPIRED,
            subscription=subscription,
            period_start=subscription.current_period_start,
            subject=f"Your subscription ended {i}",
        )
        OutboxEvent.objects.create(
            type="subscription.expired",
            subscription=subscription,
            user_id=account.user_id,
            sequence=1,
            payload={},
            occurred_at=subscription.current_period_end,
        )


class TestAccountPage:
    def test_one_page_shows_everything_support_needs(self, agent):
        account = BillingAccountFactory(user_id="viewer-7", email="anna@example.com")
        ProviderCustomerFactory(
            account=account,
            customer_ref="cus_anna",
            card_brand="visa",
            card_last4="4242",
            card_exp_month=4,
            card_exp_year=2031,
        )
        history(account, 1)
        live = SubscriptionFactory(account=account)
        subscription_cancel_by_staff(
            subscription=live,
            now=False,
            refund=False,
            actor=staff_member("Support", "lead"),
            reason="Moving abroad",
            request_key=uuid.uuid4(),
        )

        page = agent.get(change_url(account))

        content = page.content.decode()
        assert page.status_code == 200
        assert "Visa •••• 4242" in content
        assert "expires 04/2031" in content
        assert "cus_anna" in content
        assert str(live.pk) in content
        assert str(Refund.objects.get().pk) in content
        assert "request 0" in content
        assert "Your subscription ended 0" in content
        assert "subscription.expired" in content
        assert "subscription canceled by support" in content
        assert "Moving abroad" in content
        # The cancel action is offered on the live subscription only (it is set to end, not over).
        assert content.count(reverse("admin:billing_subscription_cancel", args=[live.pk])) == 1

    def test_the_page_shows_the_card_saved_at_each_provider(self, agent):
        account = BillingAccountFactory()
        ProviderCustomerFactory(account=account, customer_ref="cus_at_stripe", card_last4="4242")
        ProviderCustomerFactory(
            account=account, provider="other", customer_ref="", card_brand="mastercard", card_last4="4444"
        )

        content = agent.get(change_url(account)).content.decode()

        assert "cus_at_stripe" in content
        assert "Visa •••• 4242" in content
        assert "Mastercard •••• 4444" in content

    def test_an_account_with_nothing_saved_says_so(self, agent):
        content = agent.get(change_url(BillingAccountFactory())).content.decode()

        assert "No card saved." in content

    def test_page_reads_in_a_bounded_number_of_queries(self, agent, django_assert_max_num_queries):
        account = BillingAccountFactory()
        history(account, 1)
        agent.get(change_url(account))  # content types and the like cached
        with django_assert_max_num_queries(20) as few:
            agent.get(change_url(account))
        history(account, 8)

        with django_assert_max_num_queries(len(few.captured_queries)):
            page = agent.get(change_url(account))

        assert page.content.decode().count("request ") >= 9

    def test_accounting_sees_the_page_without_the_cancel_action(self, client):
        subscription = SubscriptionFactory()
        client.force_login(staff_member("Accounting"))

        page = client.get(change_url(subscription.account))

        assert page.status_code == 200
        assert str(subscription.pk) in page.content.decode()
        assert "/cancel/" not in page.content.decode()


class TestSearch:
    def found(self, client, term: str) -> list[BillingAccount]:
        return list(client.get(changelist_url, {"q": term}).context["cl"].result_list)

    def test_part_of_an_email_or_user_id_finds_the_account_whatever_the_case(self, agent):
        anna = BillingAccountFactory(user_id="Viewer-ABC-1", email="Anna.Smith@Example.com")
        BillingAccountFactory(user_id="viewer-xyz-2", email="bob@example.org")

        assert self.found(agent, "anna.smith") == [anna]
        assert self.found(agent, "SMITH@example") == [anna]
        assert self.found(agent, "abc-1") == [anna]
        assert self.found(agent, "VIEWER-abc") == [anna]

    def test_the_account_id_finds_the_account(self, agent):
        account = BillingAccountFactory(user_id="someone", email="")
        BillingAccountFactory(user_id="someone-else", email="")

        assert self.found(agent, str(account.pk)) == [account]

    def test_stripe_customer_id_still_finds_the_account(self, agent):
        account = ProviderCustomerFactory(customer_ref="cus_Q1w2E3").account

        assert self.found(agent, "cus_q1w2") == [account]

    def test_a_customer_id_at_any_provider_finds_the_account_once(self, agent):
        account = ProviderCustomerFactory(customer_ref="cus_shared_prefix_1").account
        ProviderCustomerFactory(account=account, provider="other", customer_ref="cus_shared_prefix_2")
        ProviderCustomerFactory(customer_ref="cus_someone_else")

        assert self.found(agent, "cus_shared_prefix") == [account]
        assert self.found(agent, "prefix_2") == [account]

    def test_the_exact_search_of_the_big_tables_finds_a_customer_id_at_any_provider(self):
        account = ProviderCustomerFactory(customer_ref="cus_exact").account
        other = ProviderCustomerFactory(provider="other", customer_ref="2c5b7e0d").account
        BillingAccountFactory(user_id="cus_exact_not")

        assert account_ids_matching("cus_exact") == [account.pk]
        assert account_ids_matching("2c5b7e0d") == [other.pk]
        assert account_ids_matching("cus_exa") == []
