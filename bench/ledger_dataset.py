"""The database of bench/ledger: paid periods already in the books, made in SQL, and renewals due.

The payments come from bench/admin_dataset.py. Their books (a capture entry per paid payment,
a refund entry per refunded one, a recognition plan each) and the filler postings that bring
the journal to the size asked are written with `INSERT … SELECT`, the balance trigger switched
off for the bulk load, as a restore would load them; `ledger_check` then verifies every row.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Model

from accounts.models import BillingAccount
from billing.models import Subscription
from ledger import accounts_chart as chart
from ledger.models import JournalEntry, Posting, RecognitionPlan
from ledger.services.postings import account_for
from payments.gateways import get_gateway
from payments.gateways.memory import MemoryGateway
from payments.models import PAID_STATUSES
from payments.services.checkout import checkout_sync
from payments.services.subscribe import subscribe
from tariffs.models import Tariff

PAID = ", ".join(f"'{status}'" for status in PAID_STATUSES)
BALANCE_TRIGGER = "posting_entry_balanced"
SUCCEEDING_CARD = "4242424242424242"


def _insert(model: type[Model], values: dict[str, str], source: str) -> int:
    """Run `INSERT INTO <model> (columns) SELECT <values> <source>`, every column but `id` named."""
    columns = [
        field.column for field in model._meta.concrete_fields if field.column != "id" or "id" in values
    ]
    missing = set(columns) - set(values)
    if missing:
        raise RuntimeError(f"bench/ledger_dataset: no value for {model.__name__} columns {sorted(missing)}")
    quote = connection.ops.quote_name
    statement = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(column) for column in columns)}) "
        f"SELECT {', '.join(values[column] for column in columns)} {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return int(cursor.rowcount)


@contextmanager
def _balance_trigger_off() -> Iterator[None]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE ledger_posting DISABLE TRIGGER {BALANCE_TRIGGER}")
        yield
        # The foreign keys' checks, deferred to the commit, run now: ALTER TABLE waits for none.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE ledger_posting ENABLE TRIGGER {BALANCE_TRIGGER}")


def _account(code: str, currency_column: str) -> str:
    """Return an SQL expression picking the id of `code`'s account in the row's currency, opening them."""
    currencies = Tariff.objects.values_list("currency", flat=True).distinct().order_by("currency")
    branches = " ".join(f"WHEN '{currency}' THEN {account_for(code, currency).pk}" for currency in currencies)
    return f"CASE {currency_column} {branches} END"


def _entries(kind: str, source: str, effective_at: str, rows: str) -> int:
    return _insert(
        JournalEntry,
        {
            "kind": f"'{kind}'",
            "source": source,
            "effective_at": effective_at,
            "payment_id": "id",
            "memo": "'bench'",
            "created_at": "now()",
        },
        rows,
    )


def _postings(kind: str, code: str, amount: str) -> int:
    return _insert(
        Posting,
        {
            "entry_id": "e.id",
            "account_id": _account(code, "p.currency"),
            "amount": amount,
            "currency": "p.currency",
            "effective_at": "e.effective_at",
        },
        f"FROM ledger_journalentry e JOIN payments_payment p ON p.id = e.payment_id WHERE e.kind = '{kind}'",
    )


def books_build() -> int:
    """Post every paid payment's capture and refund and open its plan, as the backfill would; return the plans."""
    clearing, deferred = chart.provider_clearing("stripe"), chart.DEFERRED_REVENUE
    with _balance_trigger_off():
        _entries(
            "payment_captured",
            "'payment:' || id",
            "paid_at",
            f"FROM payments_payment WHERE status IN ({PAID})",
        )
        _postings("payment_captured", clearing, "p.amount")
        _postings("payment_captured", deferred, "-p.amount")
        _entries(
            "refund",
            "'refund:' || id || ':' || refunded_amount",
            "least(paid_at + interval '5 days', now())",
            f"FROM payments_payment WHERE status IN ({PAID}) AND refunded_amount > 0",
        )
        # Refunded before any of it was earned: all of it comes out of deferred revenue.
        _postings("refund", deferred, "p.refunded_amount")
        _postings("refund", clearing, "-p.refunded_amount")
    day = "(({column}) AT TIME ZONE 'UTC')::date"
    start, end = day.format(column="period_start"), day.format(column="period_end")
    return _insert(
        RecognitionPlan,
        {
            "payment_id": "id",
            "currency": "currency",
            "start_day": start,
            "end_day": f"greatest({end}, {start} + 1)",
            "base_recognized": "0",
            "base_amount": "amount - refunded_amount",
            "recognized": "0",
            "recognized_through": "NULL",
            "deferred": "amount - refunded_amount",
            "updated_at": "now()",
        },
        f"FROM payments_payment WHERE status IN ({PAID})",
    )


def filler_add(*, postings: int) -> int:
    """Add fee entries of two postings each, spread over three years, until the journal holds `postings`."""
    missing = (postings - Posting.objects.count()) // 2
    if missing <= 0:
        return 0
    with _balance_trigger_off(), connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM ledger_journalentry")
        first = int(cursor.fetchone()[0]) + 1
        _insert(
            JournalEntry,
            {
                "kind": "'provider_fee'",
                "source": "'fee:bench:' || n",
                "effective_at": "now() - (n % 1096) * interval '1 day' - (n % 86400) * interval '1 second'",
                "payment_id": "NULL",
                "memo": "'bench'",
                "created_at": "now()",
            },
            f"FROM generate_series({first}, {first + missing - 1}) AS n",
        )
        rows = (
            "FROM (SELECT id, effective_at, CASE WHEN id % 10 = 0 THEN 'EUR' ELSE 'RUB' END AS currency, "
            f"1 + id % 1000 AS fee FROM ledger_journalentry WHERE id >= {first}) AS e"
        )
        for code, sign in ((chart.PROVIDER_FEES, ""), (chart.provider_clearing("stripe"), "-")):
            _insert(
                Posting,
                {
                    "entry_id": "e.id",
                    "account_id": _account(code, "e.currency"),
                    "amount": f"{sign}e.fee",
                    "currency": "e.currency",
                    "effective_at": "e.effective_at",
                },
                rows,
            )
    return missing * 2


def subscriptions_paid(*, count: int, tariff: Tariff) -> list[Subscription]:
    """Subscribe `count` new viewers to `tariff` and pay each page at the memory provider."""
    gateway = get_gateway()
    assert isinstance(gateway, MemoryGateway), "bench/ledger renews against the memory provider"
    subscriptions = []
    for number in range(count):
        account = BillingAccount.objects.create(user_id=f"bench-ledger-{number}")
        checkout = subscribe(account=account, tariff=tariff).checkout
        assert checkout.provider_session_id is not None
        gateway.pay_checkout(checkout.provider_session_id, SUCCEEDING_CARD)
        checkout_sync(provider_session_id=checkout.provider_session_id)
        subscriptions.append(Subscription.objects.get(pk=checkout.subscription_id))
    return subscriptions
