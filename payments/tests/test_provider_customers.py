"""An account's customer and saved card live at each provider: one row per provider, made once."""

from datetime import timedelta

import pytest
from django.db import connection

from accounts.services import account_get_or_create
from accounts.tests.factories import BillingAccountFactory
from billing.models import SubscriptionStatus
from billing.services import subscription_expire
from core import clock
from payments.gateways.base import CardInfo
from payments.models import CheckoutSession, Payment, PaymentKind, PaymentStatus, ProviderCustomer
from payments.services.customers import customer_for, payment_method_save
from payments.services.renewals import RenewalOutcome, renewal_run
from payments.tests.concurrency import run_concurrently

STRIPE_BUILDER = "payments.gateways.stripe_setup.gateway_from_settings"
# A second provider next to Stripe; the in-memory provider answers for both.
OTHER = "other"


@pytest.fixture
def two_providers(settings, memory_provider):
    settings.PAYMENT_PROVIDERS = {"stripe": STRIPE_BUILDER, OTHER: STRIPE_BUILDER}
    return memory_provider


def card(payment_method_id: str, last4: str, brand: str = "visa") -> CardInfo:
    return CardInfo(payment_method_id=payment_method_id, brand=brand, last4=last4, exp_month=4, exp_year=2031)


@pytest.mark.django_db
class TestCustomerPerProvider:
    def test_two_providers_customers_for_one_account_coexist(self, two_providers):
        account = BillingAccountFactory(user_id="viewer-1")

        at_stripe = customer_for(account=account, provider="stripe")
        at_other = customer_for(account=account, provider=OTHER)

        assert at_stripe.customer_ref and at_other.customer_ref
        assert at_stripe.customer_ref != at_other.customer_ref
        rows = ProviderCustomer.objects.filter(account=account).order_by("provider")
        assert [(row.provider, row.customer_ref) for row in rows] == [
            (OTHER, at_other.customer_ref),
            ("stripe", at_stripe.customer_ref),
        ]
        assert two_providers.calls("create_customer") == [
            ("create_customer", "customer:stripe:viewer-1"),
            ("create_customer", f"customer:{OTHER}:viewer-1"),
        ]

    def test_a_known_customer_is_not_created_again(self, two_providers):
        account = BillingAccountFactory()
        first = customer_for(account=account, provider="stripe")

        again = customer_for(account=account, provider="stripe")

        assert again.pk == first.pk and again.customer_ref == first.customer_ref
        assert len(two_providers.calls("create_customer")) == 1

    def test_saving_a_card_at_one_provider_leaves_the_other_providers_card(self, two_providers):
        account = BillingAccountFactory()
        customer_for(account=account, provider="stripe")
        payment_method_save(account=account, provider="stripe", card=card("pm_stripe", "4242"))

        payment_method_save(account=account, provider=OTHER, card=card("pm_other", "4444", "mastercard"))
        payment_method_save(account=account, provider="stripe", card=card("pm_stripe_2", "0005", "amex"))

        saved = {
            row.provider: (row.payment_method_ref, row.card_brand, row.card_last4, row.card_exp_month)
            for row in ProviderCustomer.objects.filter(account=account)
        }
        assert saved == {
            "stripe": ("pm_stripe_2", "amex", "0005", 4),
            OTHER: ("pm_other", "mastercard", "4444", 4),
        }
        # The customer stays when the card changes; the other provider's row has none (not asked for).
        customers = dict(
            ProviderCustomer.objects.filter(account=account).values_list("provider", "customer_ref")
        )
        assert customers["stripe"] and customers[OTHER] == ""


@pytest.mark.django_db
def test_a_renewal_charges_the_saved_method_of_its_own_provider(settings, two_providers, paid_subscription):
    # The viewer first paid at Stripe with a Visa, then subscribed again at the other provider
    # with a Mastercard: both cards stay saved, each at its provider.
    first = paid_subscription(card="4242424242424242")
    subscription_expire(subscription=first, at=clock.now())
    settings.DEFAULT_PAYMENT_PROVIDER = OTHER
    subscription = paid_subscription(card="5555555555554444")
    assert CheckoutSession.objects.get(subscription=subscription).provider == OTHER
    saved = {row.provider: row for row in ProviderCustomer.objects.filter(account=subscription.account)}
    assert (saved["stripe"].card_last4, saved[OTHER].card_last4) == ("4242", "4444")

    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.RENEWED

    renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
    assert (renewal.provider, renewal.status, renewal.card_last4) == (OTHER, PaymentStatus.SUCCEEDED, "4444")
    charged = two_providers.payment_intents()[-1]
    assert (charged.customer_id, charged.payment_method_id) == (
        saved[OTHER].customer_ref,
        saved[OTHER].payment_method_ref,
    )
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


@pytest.mark.django_db
def test_a_renewal_with_no_method_saved_at_its_provider_is_declined(
    settings, two_providers, paid_subscription
):
    subscription = paid_subscription()
    # The card is saved at Stripe only, while the subscription renews at the other provider.
    CheckoutSession.objects.filter(subscription=subscription).update(provider=OTHER)
    clock.advance(subscription.current_period_end - clock.now() + timedelta(minutes=1))

    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED

    renewal = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
    assert (renewal.provider, renewal.failure_code) == (OTHER, "no_saved_card")
    assert two_providers.calls("charge_off_session") == []


ROUNDS = 4
THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_a_first_customer_asked_for_at_once_is_created_once(stripe_sandbox):
    assert connection.vendor == "postgresql"
    for round_ in range(ROUNDS):
        account = account_get_or_create(user_id=f"racer-{round_}")

        refs = run_concurrently(
            lambda _, account=account: customer_for(account=account, provider="stripe").customer_ref, THREADS
        )

        rows = ProviderCustomer.objects.filter(account=account)
        assert [(row.provider, row.customer_ref) for row in rows] == [("stripe", refs[0])]
        assert set(refs) == {refs[0]}
        at_stripe = [
            customer
            for customer in stripe_sandbox.objects("customer")
            if (customer.get("metadata") or {}).get("account_ref") == account.user_id
        ]
        assert [customer["id"] for customer in at_stripe] == [refs[0]]
