"""Reads of subscriptions and of the access they give."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db.models import FilteredRelation, Prefetch, Q, QuerySet

from accounts.models import BillingAccount
from billing import clock
from billing.access import grants_access
from billing.models import LIVE_STATUSES, Subscription


@dataclass(frozen=True)
class TariffRef:
    id: int
    slug: str
    name: str


@dataclass(frozen=True)
class AccessSubscription:
    id: UUID
    status: str
    tariff: TariffRef
    current_period_end: datetime | None
    autopay: bool
    cancel_at_period_end: bool


@dataclass(frozen=True)
class Access:
    has_access: bool
    subscription: AccessSubscription | None


@dataclass(frozen=True)
class AccountAccess:
    """The access of a cinema user, and whether we have a billing account for them yet."""

    account_exists: bool
    access: Access


NO_ACCESS = Access(has_access=False, subscription=None)

_ACCESS_FIELDS = (
    "live__id",
    "live__status",
    "live__current_period_end",
    "live__autopay",
    "live__cancel_at_period_end",
    "live__tariff_id",
    "live__tariff__slug",
    "live__tariff__name",
)


def access_for_user(*, user_id: str, now: datetime | None = None) -> AccountAccess:
    """Return the access a cinema user has now, in a single database query.

    The account and its live subscription (at most one, by a database constraint) are
    read together through a LEFT JOIN, so this stays one indexed query however many
    subscriptions an account has had.
    """
    row = (
        BillingAccount.objects.filter(user_id=user_id)
        .annotate(
            live=FilteredRelation("subscriptions", condition=Q(subscriptions__status__in=LIVE_STATUSES))
        )
        .values(*_ACCESS_FIELDS)
        .first()
    )
    if row is None:
        return AccountAccess(account_exists=False, access=NO_ACCESS)
    if row["live__id"] is None:
        return AccountAccess(account_exists=True, access=NO_ACCESS)
    subscription = AccessSubscription(
        id=row["live__id"],
        status=row["live__status"],
        tariff=TariffRef(
            id=row["live__tariff_id"], slug=row["live__tariff__slug"], name=row["live__tariff__name"]
        ),
        current_period_end=row["live__current_period_end"],
        autopay=row["live__autopay"],
        cancel_at_period_end=row["live__cancel_at_period_end"],
    )
    has_access = grants_access(
        status=subscription.status,
        current_period_end=subscription.current_period_end,
        will_renew=subscription.autopay and not subscription.cancel_at_period_end,
        now=now or clock.now(),
        grace=settings.BILLING_GRACE_PERIOD,
    )
    return AccountAccess(account_exists=True, access=Access(has_access, subscription))


def account_had_trial(*, account_id: int, excluding: UUID | None = None) -> bool:
    """Return whether an account ever started a trial: there is one per account, ever."""
    trials = Subscription.objects.filter(account_id=account_id, trial_end__isnull=False)
    return trials.exclude(pk=excluding).exists() if excluding else trials.exists()


def subscription_list(*, account: BillingAccount) -> QuerySet[Subscription]:
    """Return an account's subscriptions, newest first, with any renewal awaiting the viewer."""
    from payments.models import CheckoutSession, CheckoutStatus, PaymentKind

    open_renewal_checkouts = CheckoutSession.objects.filter(
        status=CheckoutStatus.OPEN, payment__kind=PaymentKind.RENEWAL
    ).order_by("-created_at")
    return (
        Subscription.objects.filter(account=account)
        .select_related("tariff", "account")
        .prefetch_related(
            Prefetch("checkout_sessions", queryset=open_renewal_checkouts, to_attr="open_renewal_checkouts")
        )
    )


def subscription_get(*, account: BillingAccount, subscription_id: UUID) -> Subscription | None:
    """Return one of an account's subscriptions, or None if it is not theirs or unknown."""
    return subscription_list(account=account).filter(pk=subscription_id).first()
