import factory

from billing.tests.factories import SubscriptionFactory
from payments.models import Payment, PaymentKind, PaymentStatus


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
