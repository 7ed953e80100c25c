"""Fill the benchmark database with billing accounts and subscriptions, fast (COPY)."""

import io
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Model
from django.utils import timezone

from accounts.models import BillingAccount
from billing.models import Subscription, SubscriptionStatus
from tariffs.models import PeriodUnit, Tariff

S = SubscriptionStatus
DAY = timedelta(days=1)
PERIOD_LENGTH = {PeriodUnit.MONTH: 30 * DAY, PeriodUnit.YEAR: 365 * DAY}


@dataclass(frozen=True)
class TariffSpec:
    slug: str
    name: str
    amount: int
    period_unit: PeriodUnit
    trial_days: int
    weight: float


TARIFFS = (
    TariffSpec("monthly", "Monthly", 39900, PeriodUnit.MONTH, 0, 0.55),
    TariffSpec("yearly", "Yearly", 399000, PeriodUnit.YEAR, 0, 0.20),
    TariffSpec("premium-monthly", "Premium monthly", 59900, PeriodUnit.MONTH, 0, 0.10),
    TariffSpec("monthly-trial", "Monthly, 7 days free", 39900, PeriodUnit.MONTH, 7, 0.15),
)
TRIAL_TARIFF = "monthly-trial"

# The kinds of viewer the access endpoint meets: their subscription's status...
KIND_STATUS = {
    "active": S.ACTIVE,
    "trialing": S.TRIALING,
    "past_due_in_grace": S.PAST_DUE,
    "past_due_after_grace": S.PAST_DUE,
    "pending": S.PENDING,
    "expired": S.EXPIRED,
    "canceled": S.CANCELED,
}
# ...and their share of the accounts.
KIND_WEIGHTS = {
    "active": 0.70,
    "trialing": 0.07,
    "past_due_in_grace": 0.04,
    "past_due_after_grace": 0.02,
    "pending": 0.03,
    "expired": 0.12,
    "canceled": 0.02,
}


@dataclass(frozen=True)
class BenchViewer:
    user_id: str
    email: str
    kind: str


@dataclass(frozen=True)
class Dataset:
    viewers: list[BenchViewer]
    kinds: Counter[str]


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _NotCopyable(TypeError):
    pass


def _copy_text(value: Any) -> str:
    """Return a value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, int | float | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    raise _NotCopyable(type(value).__name__)


def _copy_rows(model: type[Model], objects: list[Any]) -> None:
    """Insert model instances with one COPY, primary keys included, as bulk_create would.

    Every concrete field is written, with the value Django would save, so fields added to
    the models later need nothing here. A value COPY's text format cannot carry (JSON, say)
    makes this fall back to bulk_create.
    """
    fields = model._meta.concrete_fields
    buffer = io.StringIO()
    try:
        for obj in objects:
            values = []
            for field in fields:
                value = getattr(obj, field.attname)
                if value is None:
                    value = field.pre_save(obj, add=True)  # auto_now(_add) timestamps
                values.append(_copy_text(field.get_db_prep_save(value, connection)))
            buffer.write("\t".join(values))
            buffer.write("\n")
    except _NotCopyable:
        model._default_manager.bulk_create(objects, batch_size=5000)
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    statement = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if hasattr(raw, "copy_expert"):  # psycopg2
            buffer.seek(0)
            raw.copy_expert(statement, buffer)
        else:  # psycopg 3
            with raw.copy(statement) as copy:
                copy.write(buffer.getvalue())
        # The primary keys were given, so move the id sequences past them.
        for statement in connection.ops.sequence_reset_sql(no_style(), [model]):
            cursor.execute(statement)


def _subscription(
    rng: random.Random, *, kind: str, account_id: int, tariffs: dict[str, Tariff], now: datetime
) -> Subscription:
    if kind == "trialing":
        tariff = tariffs[TRIAL_TARIFF]
    else:
        specs = [spec for spec in TARIFFS if spec.trial_days == 0]
        tariff = tariffs[rng.choices(specs, weights=[spec.weight for spec in specs])[0].slug]
    period = PERIOD_LENGTH[PeriodUnit(tariff.period_unit)]
    grace: timedelta = settings.BILLING_GRACE_PERIOD
    autopay, cancel_at_period_end = True, False
    canceled_at = ended_at = end = None
    if kind == "active":
        end = now + rng.uniform(0.05, 1) * period
        cancel_at_period_end = rng.random() < 0.06
        autopay = rng.random() < 0.92
        canceled_at = now - rng.uniform(0, 10) * DAY if cancel_at_period_end else None
    elif kind == "trialing":
        period = tariff.trial_days * DAY
        end = now + rng.uniform(0.05, 1) * period
    elif kind == "past_due_in_grace":
        end = now - rng.uniform(0.05, 0.9) * grace
    elif kind == "past_due_after_grace":
        end = now - grace - rng.uniform(0.1, 10) * DAY
    elif kind in ("expired", "canceled"):
        end = now - rng.uniform(1, 300) * DAY
        autopay = False
        ended_at = end
        canceled_at = end - rng.uniform(1, 20) * DAY if kind == "canceled" else None
    start = anchor = None
    created_at = now - rng.uniform(0, 2) * DAY
    if end is not None:
        start = end - period
        anchor = created_at = start - rng.randint(0, 12) * period
    return Subscription(
        id=uuid.UUID(int=rng.getrandbits(128), version=4),
        account_id=account_id,
        tariff=tariff,
        amount=tariff.amount,
        currency=tariff.currency,
        status=KIND_STATUS[kind],
        autopay=autopay,
        cancel_at_period_end=cancel_at_period_end,
        billing_anchor=anchor,
        current_period_start=start,
        current_period_end=end,
        canceled_at=canceled_at,
        ended_at=ended_at,
        created_at=created_at,
        updated_at=now,
    )


def dataset_load(*, accounts: int, seed: int = 20261122) -> Dataset:
    """Create a few tariffs and `accounts` billing accounts, each with one subscription.

    Statuses follow KIND_WEIGHTS, so the endpoint meets every branch of the access rule.
    The same seed gives the same viewers and subscriptions.
    """
    rng = random.Random(seed)
    now = timezone.now()
    tariffs = {
        tariff.slug: tariff
        for tariff in Tariff.objects.bulk_create(
            Tariff(
                slug=spec.slug,
                name=spec.name,
                amount=spec.amount,
                currency="RUB",
                period_unit=spec.period_unit,
                trial_days=spec.trial_days,
                display_order=order,
            )
            for order, spec in enumerate(TARIFFS)
        )
    }
    kinds = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()), k=accounts)
    viewers = [
        BenchViewer(
            user_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            email=f"viewer{number}@example.com",
            kind=kind,
        )
        for number, kind in enumerate(kinds)
    ]
    _copy_rows(
        BillingAccount,
        [
            BillingAccount(
                id=number,
                user_id=viewer.user_id,
                email=viewer.email,
                language="ru" if rng.random() < 0.6 else "en",
                created_at=now - rng.uniform(0, 900) * DAY,
                updated_at=now,
            )
            for number, viewer in enumerate(viewers, start=1)
        ],
    )
    _copy_rows(
        Subscription,
        [
            _subscription(rng, kind=viewer.kind, account_id=number, tariffs=tariffs, now=now)
            for number, viewer in enumerate(viewers, start=1)
        ],
    )
    with connection.cursor() as cursor:
        # A long-lived table is mostly all-visible and has fresh statistics: VACUUM gets the
        # freshly loaded one there, ANALYZE gives the planner the real row counts.
        cursor.execute("VACUUM ANALYZE")
    return Dataset(viewers=viewers, kinds=Counter(kinds))
