"""Row locks, taken in the one order every write of the service follows.

**Lock order: account → subscription → checkout → payment → refund request → refund**
(then a payment's recognition plan in the ledger, then notice and outbox rows). A transaction
that locks more than one of these rows takes them in this order, whichever service it runs
in, so two writes of one viewer or one payment can wait for each other but never deadlock.
An UPDATE locks its row as well, so an `account.save()` or a
`Payment.objects.filter(...).update(...)` counts as taking that lock.

The account of a subscription, the subscription of a checkout or payment and the payment of a
refund never change, so reading them without a lock to find which rows to lock is safe; any
other column read without a lock is a hint, never a decision. docs/architecture.md draws the
order; tests/concurrency/ runs every pair of writes at once to hold it.
"""

from typing import Any

from accounts.models import BillingAccount
from billing.models import Subscription


def account_lock(account_id: Any) -> BillingAccount:
    """Return an account re-read under its row lock: the first lock of any write of one viewer."""
    return BillingAccount.objects.select_for_update().get(pk=account_id)


def subscription_lock(subscription_id: Any) -> Subscription:
    """Return a subscription re-read under its row lock (inside the caller's transaction).

    Only the subscription's row is locked (`of=self`): its account is read along, but locking
    it too would serialise every change of the account. The tariff is read after the lock, not
    joined into it: a plan change moves `tariff_id`, and a waiter's PostgreSQL re-checks the
    join against the tariff row it read before waiting, which would lose the subscription.
    """
    subscription = (
        Subscription.objects.select_for_update(of=("self",)).select_related("account").get(pk=subscription_id)
    )
    subscription.tariff  # noqa: B018 (loaded now, under the lock: what the callers read)
    return subscription


def subscription_lock_with_account(subscription_id: Any) -> Subscription:
    """Lock a subscription's account, then the subscription: the first two steps of the order."""
    account_id = Subscription.objects.values_list("account_id", flat=True).get(pk=subscription_id)
    account_lock(account_id)
    return subscription_lock(subscription_id)
