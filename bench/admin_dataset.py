"""The database of bench/admin: a million payments built in SQL, kept between runs on request.

Everything past the few tariffs and staff users is made by PostgreSQL itself with
`INSERT … SELECT … generate_series`, so a million payments take well under a minute, and
with a fixed seed the same options give the same rows.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models import Model

from accounts.models import BillingAccount
from billing.models import Subscription
from payments.models import Payment, ProviderCustomer, Refund
from tariffs.models import PeriodUnit, Tariff

ACCOUNTANT = "bench-accountant"
SEED = 0.2026


@dataclass(frozen=True)
class TariffSpec:
    slug: str
    amount: int
    currency: str
    period_unit: str
    trial_days: int
    # Upper bound of this tariff's share of the non-trial subscriptions, cumulative.
    up_to: float


TARIFFS = (
    TariffSpec("monthly", 39900, "RUB", PeriodUnit.MONTH, 0, 0.50),
    TariffSpec("yearly", 399000, "RUB", PeriodUnit.YEAR, 0, 0.62),
    TariffSpec("premium-monthly", 59900, "RUB", PeriodUnit.MONTH, 0, 0.75),
    TariffSpec("monthly-eur", 999, "EUR", PeriodUnit.MONTH, 0, 0.95),
    TariffSpec("yearly-eur", 9999, "EUR", PeriodUnit.YEAR, 0, 1.0),
    TariffSpec("monthly-trial", 39900, "RUB", PeriodUnit.MONTH, 7, 1.0),
)


@dataclass(frozen=True)
class Sizes:
    accounts: int
    subscriptions: int
    payments: int
    refunds: int


# --- the database ---------------------------------------------------------------------------


def dataset_sizes() -> Sizes:
    """Return how many rows the dataset's tables hold."""
    return Sizes(
        accounts=BillingAccount.objects.count(),
        subscriptions=Subscription.objects.count(),
        payments=Payment.objects.count(),
        refunds=Refund.objects.count(),
    )


# --- the rows -------------------------------------------------------------------------------


def _insert(model: type[Model], values: dict[str, str], source: str) -> None:
    """Run `INSERT INTO <model> (columns) SELECT <values> <source>`, every column named.

    Every concrete column must have an expression, so a field added to a model later makes
    this fail loudly instead of leaving a NOT NULL column without a value.
    """
    columns = [field.column for field in model._meta.concrete_fields]
    missing = set(columns) - set(values)
    if missing:
        raise RuntimeError(f"bench/admin_dataset: no value for {model.__name__} columns {sorted(missing)}")
    quote = connection.ops.quote_name
    statement = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(column) for column in columns)}) "
        f"SELECT {', '.join(values[column] for column in columns)} {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement)


def _tariffs() -> dict[str, Tariff]:
    return {
        tariff.slug: tariff
        for tariff in Tariff.objects.bulk_create(
            Tariff(
                slug=spec.slug,
                name=spec.slug.replace("-", " ").capitalize(),
                amount=spec.amount,
                currency=spec.currency,
                period_unit=spec.period_unit,
                trial_days=spec.trial_days,
                display_order=order,
            )
            for order, spec in enumerate(TARIFFS)
        )
    }


def _tariff_case(tariffs: dict[str, Tariff], column: str) -> str:
    """Return a CASE picking a non-trial tariff's column by the random number `r3`."""
    branches = " ".join(
        f"WHEN r3 < {spec.up_to} THEN {_sql_value(getattr(tariffs[spec.slug], column))}"
        for spec in TARIFFS
        if not spec.trial_days
    )
    return f"CASE {branches} END"


def _sql_value(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _plan_subscriptions(*, subscriptions: int, payments: int, tariffs: dict[str, Tariff]) -> None:
    """Decide every subscription's status, tariff, dates and number of payments (temp table)."""
    trial = tariffs["monthly-trial"]
    grace_days = settings.BILLING_GRACE_PERIOD / timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [SEED])
        cursor.execute("DROP TABLE IF EXISTS bench_plan")
        # Statuses: 60% active, 5% trialing, 3% past due, 2% pending, 20% expired, 10% canceled.
        cursor.execute(
            f"""
            CREATE TEMP TABLE bench_plan AS
            SELECT n, r2, r4, r5,
                CASE WHEN r < 0.60 THEN 'active' WHEN r < 0.65 THEN 'trialing'
                     WHEN r < 0.68 THEN 'past_due' WHEN r < 0.70 THEN 'pending'
                     WHEN r < 0.90 THEN 'expired' ELSE 'canceled' END AS status,
                CASE WHEN r >= 0.60 AND r < 0.65 THEN {trial.pk} ELSE {
                _tariff_case(tariffs, "pk")
            } END AS tariff_id,
                CASE WHEN r >= 0.60 AND r < 0.65 THEN {trial.amount} ELSE {
                _tariff_case(tariffs, "amount")
            } END
                    AS amount,
                CASE WHEN r >= 0.60 AND r < 0.65 THEN '{trial.currency}'
                     ELSE {_tariff_case(tariffs, "currency")} END AS currency,
                CASE WHEN r >= 0.60 AND r < 0.65 THEN interval '30 days'
                     ELSE {
                _tariff_case(tariffs, "period_unit")
                .replace("'year'", "interval '365 days'")
                .replace("'month'", "interval '30 days'")
            } END AS period
            FROM (
                SELECT n, random() AS r, random() AS r2, random() AS r3, random() AS r4, random() AS r5
                FROM generate_series(1, %s) AS n
            ) AS g
            """,
            [subscriptions],
        )
        # The payments are shared out among the subscriptions that started and are not in trial.
        cursor.execute(
            """
            ALTER TABLE bench_plan ADD COLUMN payments int NOT NULL DEFAULT 0,
                ADD COLUMN anchor timestamptz, ADD COLUMN period_start timestamptz,
                ADD COLUMN period_end timestamptz, ADD COLUMN ended_at timestamptz,
                ADD COLUMN canceled_at timestamptz, ADD COLUMN autopay boolean NOT NULL DEFAULT true,
                ADD COLUMN cancel_at_period_end boolean NOT NULL DEFAULT false,
                ADD COLUMN created_at timestamptz, ADD COLUMN involuntary boolean NOT NULL DEFAULT false
            """
        )
        cursor.execute(
            """
            WITH paying AS (
                SELECT n, row_number() OVER (ORDER BY n) AS k, count(*) OVER () AS m
                FROM bench_plan WHERE status NOT IN ('trialing', 'pending')
            )
            UPDATE bench_plan p SET payments = %(payments)s / paying.m + (paying.k <= %(payments)s %% paying.m)::int
            FROM paying WHERE paying.n = p.n
            """,
            {"payments": payments},
        )
        cursor.execute(
            """
            UPDATE bench_plan SET
                anchor = CASE
                    WHEN status = 'active' THEN now() - payments * period + r2 * period
                    WHEN status = 'past_due' THEN now() - (payments - 1) * period - r2 * interval '2 days'
                    WHEN status IN ('expired', 'canceled') THEN now() - r2 * interval '400 days' - payments * period
                    WHEN status = 'trialing' THEN now() + r2 * interval '7 days'
                END,
                involuntary = status = 'expired' AND r4 < 0.6,
                autopay = NOT (status = 'expired' AND r4 >= 0.6 AND r4 < 0.85) AND NOT (status = 'active' AND r4 < 0.05),
                cancel_at_period_end = status = 'active' AND r5 < 0.05
            """
        )
        cursor.execute(
            """
            UPDATE bench_plan SET
                period_end = CASE
                    WHEN status IN ('active', 'expired', 'canceled') THEN anchor + payments * period
                    WHEN status = 'past_due' THEN anchor + greatest(payments - 1, 1) * period
                    WHEN status = 'trialing' THEN anchor
                END,
                created_at = CASE
                    WHEN status = 'trialing' THEN anchor - interval '7 days'
                    WHEN status = 'pending' THEN now() - r2 * interval '2 days'
                    ELSE anchor - interval '3 minutes'
                END
            """
        )
        cursor.execute(
            f"""
            UPDATE bench_plan SET
                period_start = CASE WHEN status = 'trialing' THEN created_at ELSE period_end - period END,
                ended_at = CASE
                    WHEN status = 'expired' AND involuntary THEN period_end + interval '{grace_days} days'
                    WHEN status IN ('expired', 'canceled') THEN period_end END,
                canceled_at = CASE
                    WHEN status = 'canceled' THEN period_end
                    WHEN status = 'expired' AND r4 >= 0.85 THEN period_end - interval '10 days'
                    WHEN status = 'active' AND r5 < 0.05 THEN now() - interval '3 days' END
            """
        )


def dataset_build(*, subscriptions: int, payments: int) -> Sizes:
    """Fill the empty, migrated database: one account per subscription, `payments` payments in all.

    A subscription's payments are its periods, one after the other from its billing anchor:
    the last one of a past-due subscription, and of one that expired after dunning, was
    declined; about 2% of the others were refunded in full, 2% in part, and 2% were paid only
    after a decline or two (dunning recovered). Refunded payments have one succeeded refund.
    """
    tariffs = _tariffs()
    _plan_subscriptions(subscriptions=subscriptions, payments=payments, tariffs=tariffs)
    _insert(
        BillingAccount,
        {
            "id": "n",
            "user_id": "'bench-user-' || n",
            "email": "'viewer' || n || '@example.com'",
            "language": "CASE WHEN r5 < 0.6 THEN 'ru' ELSE 'en' END",
            "created_at": "created_at - interval '1 hour'",
            "updated_at": "now()",
        },
        "FROM bench_plan",
    )
    _insert(
        ProviderCustomer,
        {
            "id": "n",
            "account_id": "n",
            "provider": "'stripe'",
            "customer_ref": "'cus_bench' || n",
            "payment_method_ref": "'pm_bench' || n",
            "card_brand": "'visa'",
            "card_last4": "'4242'",
            "card_exp_month": "12",
            "card_exp_year": "2030",
            "created_at": "created_at - interval '1 hour'",
            "updated_at": "now()",
        },
        "FROM bench_plan",
    )
    _insert(
        Subscription,
        {
            "id": "md5('subscription' || n)::uuid",
            "account_id": "n",
            "tariff_id": "tariff_id",
            "amount": "amount",
            "currency": "currency",
            "status": "status",
            "autopay": "autopay",
            "cancel_at_period_end": "cancel_at_period_end",
            "billing_anchor": "anchor",
            "current_period_start": "period_start",
            "current_period_end": "period_end",
            "trial_end": "CASE WHEN status = 'trialing' THEN anchor END",
            "trial_card_fingerprint": "''",
            "scheduled_tariff_id": "NULL",
            "next_renewal_attempt_at": "CASE WHEN status = 'past_due' THEN now() + interval '1 day' END",
            "canceled_at": "canceled_at",
            "ended_at": "ended_at",
            "created_at": "created_at",
            "updated_at": "now()",
        },
        "FROM bench_plan",
    )
    # u decides a payment's fate; the last payment of a subscription in or after dunning was declined.
    declined = "(j = p.payments - 1 AND (p.status = 'past_due' OR p.involuntary))"
    start = "(p.anchor + j * p.period)"
    _insert(
        Payment,
        {
            "id": "md5('payment' || p.n || ':' || j)::uuid",
            "subscription_id": "md5('subscription' || p.n)::uuid",
            "kind": "CASE WHEN j = 0 THEN 'initial' ELSE 'renewal' END",
            "amount": "p.amount",
            "currency": "p.currency",
            "status": f"""CASE WHEN {declined} THEN 'failed' WHEN u < 0.02 THEN 'refunded'
                WHEN u < 0.04 THEN 'partially_refunded' ELSE 'succeeded' END""",
            "refunded_amount": f"""CASE WHEN {declined} THEN 0 WHEN u < 0.02 THEN p.amount
                WHEN u < 0.04 THEN p.amount / 2 ELSE 0 END""",
            "period_start": start,
            "period_end": f"{start} + p.period",
            "idempotency_key": "'bench:' || p.n || ':' || j",
            "provider": "'stripe'",
            "provider_checkout_id": "CASE WHEN j = 0 THEN 'cs_bench_' || p.n END",
            "provider_payment_id": "'pi_bench_' || p.n || '_' || j",
            "provider_charge_id": f"CASE WHEN NOT {declined} THEN 'ch_bench_' || p.n || '_' || j END",
            "card_brand": "'visa'",
            "card_last4": "'4242'",
            "failed_attempts": f"""CASE WHEN {declined} THEN CASE WHEN p.involuntary THEN 3 ELSE 1 END
                WHEN j > 0 AND u >= 0.04 AND u < 0.06 THEN 1 + (u * 1000)::int % 2 ELSE 0 END""",
            "failure_code": f"CASE WHEN {declined} THEN 'insufficient_funds' ELSE '' END",
            "failure_message": f"CASE WHEN {declined} THEN 'Your card has insufficient funds.' ELSE '' END",
            "receipt_registration": "''",
            "paid_at": f"""CASE WHEN {declined} THEN NULL
                WHEN j > 0 AND u >= 0.04 AND u < 0.06 THEN {start} + interval '1 day'
                ELSE {start} + interval '2 minutes' END""",
            "created_at": f"{start} - interval '1 minute'",
            "updated_at": "now()",
        },
        "FROM bench_plan p CROSS JOIN LATERAL generate_series(0, p.payments - 1) AS j "
        "CROSS JOIN LATERAL (SELECT random() + j * 0 AS u) AS fate",
    )
    _insert(
        Refund,
        {
            "id": "md5('refund' || id::text)::uuid",
            "payment_id": "id",
            "amount": "refunded_amount",
            "currency": "currency",
            "status": "'succeeded'",
            "reason": "'requested_by_customer'",
            "comment": "''",
            "provider": "'stripe'",
            "provider_refund_id": "'re_' || replace(id::text, '-', '')",
            "failure_reason": "''",
            "end_access": "status = 'refunded'",
            "request_key": "NULL",
            "created_by_id": "NULL",
            "approved_by_id": "NULL",
            "created_at": "least(paid_at + interval '5 days', now())",
            "succeeded_at": "least(paid_at + interval '5 days', now())",
            "updated_at": "now()",
        },
        "FROM payments_payment WHERE refunded_amount > 0",
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_plan")
        for table in ("accounts_billingaccount", "payments_providercustomer"):
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, subscriptions])
    staff_create()
    return dataset_sizes()


def staff_create() -> User:
    """Return the accountant the benchmark logs in as (in the Accounting group), creating it once."""
    user, created = User.objects.get_or_create(username=ACCOUNTANT, defaults={"is_staff": True})
    if created:
        user.groups.add(Group.objects.get(name="Accounting"))
    return user
