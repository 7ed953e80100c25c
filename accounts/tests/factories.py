import factory

from accounts.models import BillingAccount


class BillingAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillingAccount

    user_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda account: f"{account.user_id}@example.com")
