"""Reads of subscriptions and of the access they give."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime

from accounts.models import BillingAccount
from billing.access import grants_access
from billing.access_cache import access_cache
from billing.models import LIVE_STATUSES, Subscription
from core import clock
from tariffs.models import Tariff


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

# Written out rather than built with the ORM: compiling the equivalent queryset (a
# FilteredRelation and values()) cost about 1.2 ms of CPU per request, several times the
# rest of the endpoint (docs/benchmarks.md). The live statuses are constants, inlined so that
# the partial unique index `one_live_subscription_per_account` serves the join. Every table
# read here notifies the access cache of its changes (billing/migrations/0007): a new table
# or column read here needs a trigger there.
_ACCESS_SQL = """
    SELECT account.id, live.id, live.status, live.current_period_end, live.autopay,
           live.cancel_at_period_end, tariff.id, tariff.slug, tariff.name
    FROM {account} AS account
    LEFT JOIN {subscription} AS live
        ON live.account_id = account.id AND live.status IN ({live_statuses})
    LEFT JOIN {tariff} AS tariff ON tariff.id = live.tariff_id
    WHERE account.user_id = %s
""".format(  # noqa: S608 -- table names and status constants from the code, never from input
    account=BillingAccount._meta.db_table,
    subscription=Subscription._meta.db_table,
    tariff=Tariff._meta.db_table,
    live_statuses=", ".join(f"'{status.value}'" for status in LIVE_STATUSES),
)


def _aware_datetime(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(value)
    if moment is None:
        raise ValueError(f"not a datetime: {value!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _access_row(user_id: str) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(_ACCESS_SQL, [user_id])
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row


def _live_subscription(row: tuple[Any, ...]) -> AccessSubscription | None:
    _, subscription_id, status, period_end, autopay, cancel_at_period_end, tariff_id, slug, name = row
    if subscription_id is None:
        return None
    # PostgreSQL returns typed values; SQLite (`make run`) returns text and integers.
    return AccessSubscription(
        id=subscription_id if isinstance(subscription_id, UUID) else UUID(str(subscription_id)),
        status=status,
        tariff=TariffRef(id=tariff_id, slug=slug, name=name),
        current_period_end=_aware_datetime(period_end),
        autopay=bool(autopay),
        cancel_at_period_end=bool(cancel_at_period_end),
    )


def _access_now(subscription: AccessSubscription | None, now: datetime | None) -> AccountAccess:
    if subscription is None:
        return AccountAccess(account_exists=True, access=NO_ACCESS)
    has_access = grants_access(
        status=subscription.status,
        current_period_end=subscription.current_period_end,
        will_renew=subscription.autopay and not subscription.cancel_at_period_end,
        now=now or clock.now(),
        grace=settings.BILLING_GRACE_PERIOD,
    )
    return AccountAccess(account_exists=True, access=Access(has_access, subscription))


def access_for_user(*, user_id: str, now: datetime | None = None) -> AccountAccess:
    """Return the access a cinema user has now, in at most one database query.

    The account and its live subscription (at most one, by a database constraint) are
    read together through a LEFT JOIN, so this stays one indexed query however many
    subscriptions an account has had. With `BILLING_ACCESS_CACHE` on PostgreSQL, a repeated
    read is served from this process's cache instead, which the database keeps right
    (billing/access_cache.py says how, and how fresh). Either way the access rule is applied
    here, now, to what was read: the period end and the grace period never come from a cache.
    """
    # Inside a transaction the row read may be this transaction's own uncommitted change
    # (never to be notified if it rolls back), and a cached row would hide that change.
    cache = None if connection.in_atomic_block else access_cache()
    generation = None
    if cache is not None:
        entry = cache.get(user_id)
        if entry is not None:
            return _access_now(entry.value, now)
        # Taken before the query: a change committed during it makes the row unfit to keep.
        generation = cache.generation()
    row = _access_row(user_id)
    if row is None:
        # Not cached: the viewer's first request opens their account right after this.
        return AccountAccess(account_exists=False, access=NO_ACCESS)
    subscription = _live_subscription(row)
    if cache is not None and generation is not None:
        cache.store(user_id, account_id=int(row[0]), value=subscription, generation=generation)
    return _access_now(subscription, now)


def card_had_trial(*, fingerprint: str, excluding: UUID | None = None) -> bool:
    """Return whether a card (by the provider's fingerprint) ever started a trial, on any account."""
    if not fingerprint:
        return False
    trials = Subscription.objects.filter(trial_card_fingerprint=fingerprint, trial_end__isnull=False)
    return trials.exclude(pk=excluding).exists() if excluding else trials.exists()


def account_had_trial(*, account_id: int, excluding: UUID | None = None) -> bool:
    """Return whether an account ever started a trial: there is one per account, ever."""
    trials = Subscription.objects.filter(account_id=account_id, trial_end__isnull=False)
    return trials.exclude(pk=excluding).exists() if excluding else trials.exists()
