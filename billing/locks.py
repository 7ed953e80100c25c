"""Row locks on subscriptions, shared by every service that changes one."""

from typing import Any

from billing.models import Subscription


def subscription_lock(subscription_id: Any) -> Subscription:
    """Return a subscription re-read under its row lock (inside the caller's transaction).

    Only the subscription's row is locked (`of=self`): its account and tariff are read along,
    but locking them too would serialise every change of every subscription on one tariff.
    """
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("account", "tariff")
        .get(pk=subscription_id)
    )
