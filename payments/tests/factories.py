import factory

from accounts.tests.factories import BillingAccountFactory
from billing.tests.factories import SubscriptionFactory
from payments.models import (
    Payment,
    PaymentKind,
    PaymentStatus,
    Provider,
    ProviderCustomer,
    Refund,
    RefundRequest,
    RefundStatus,
)


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    subscription = factory.SubFactory(SubscriptionFactory)
    kind = PaymentKind.INITIAL
    amount = factory.SelfAttribute("subscription.amount")
    currency = factory.SelfAttribute("subscription.currency")
    status = PaymentStatus.SUCCEEDED
    period_start = factory.SelfAttribute("subscription.current_period_start")
    period_end = factory.SelfAttribute("subscription.current_period_end")
    idempotency_key = factory.LazyAttribute(
        lambda p: f"subscription-{p.subscription.pk}-{p.kind}-{p.period_start}"
    )


class ProviderCustomerFactory(factory.django.DjangoModelFactory):
    """An account's customer at a provider with a saved card (Stripe's test Visa by default)."""

    class Meta:
        model = ProviderCustomer

    account = factory.SubFactory(BillingAccountFactory)
    provider = Provider.STRIPE
    customer_ref = factory.Sequence(lambda n: f"cus_test{n}")
    payment_method_ref = factory.Sequence(lambda n: f"pm_test{n}")
    card_brand = "visa"
    card_last4 = "4242"
    card_exp_month = 12
    card_exp_year = 2034


class RefundFactory(factory.django.DjangoModelFactory):
    """A refund of a payment (by default the whole of it, succeeded)."""

    class Meta:
        model = Refund

    payment = factory.SubFactory(PaymentFactory)
    amount = factory.SelfAttribute("payment.amount")
    currency = factory.SelfAttribute("payment.currency")
    status = RefundStatus.SUCCEEDED


class RefundRequestFactory(factory.django.DjangoModelFactory):
    """A viewer's open request to get a payment back."""

    class Meta:
        model = RefundRequest

    payment = factory.SubFactory(PaymentFactory)
    account = factory.SelfAttribute("payment.subscription.account")
    reason = "I was charged after I canceled."
