from datetime import timedelta

import factory
from django.utils import timezone

from accounts.tests.factories import BillingAccountFactory
from billing.models import Subscription, SubscriptionStatus
from tariffs.tests.factories import TariffFactory


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A subscription in its first period; pass `status` and period fields to vary it."""

    class Meta:
        model = Subscription

    class Params:
        # A subscription created at subscribe time, before any payment: no period yet.
        pending = factory.Trait(
            status=SubscriptionStatus.PENDING,
            billing_anchor=None,
            current_period_start=None,
            current_period_end=None,
        )

    account = factory.SubFactory(BillingAccountFactory)
    tariff = factory.SubFactory(TariffFactory)
    amount = factory.SelfAttribute("tariff.amount")
    currency = factory.SelfAttribute("tariff.currency")
    status = SubscriptionStatus.ACTIVE
    billing_anchor = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    current_period_start = factory.SelfAttribute("billing_anchor")
    current_period_end = factory.LazyAttribute(lambda s: s.current_period_start + timedelta(days=30))
