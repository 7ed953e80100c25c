"""Day totals: what each UTC day's postings add up to per account and kind of entry.

The database keeps them, whatever code posts: on PostgreSQL a statement-level trigger adds one
row per (account, day, kind) of each INSERT into the postings (a bulk insert of a thousand
recognitions adds two rows); on SQLite (`make run`) a row-level trigger adds one per posting.
Then the postings already in the books are summed in, with the postings locked against
inserts meanwhile, so none is counted twice or missed.
"""

import django.db.models.deletion
from django.db import migrations, models

POSTGRESQL = [
    # Inserts wait until this migration commits: each posting is either summed below or,
    # inserted after, by the trigger, never both.
    "LOCK TABLE ledger_posting IN SHARE MODE",
    """
    CREATE FUNCTION ledger_day_totals_add() RETURNS trigger AS $$
    BEGIN
        INSERT INTO ledger_daytotal (account_id, currency, day, kind, amount)
        SELECT p.account_id, p.currency, (p.effective_at AT TIME ZONE 'UTC')::date, e.kind, SUM(p.amount)
        FROM new_postings p JOIN ledger_journalentry e ON e.id = p.entry_id
        GROUP BY 1, 2, 3, 4;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER posting_day_totals AFTER INSERT ON ledger_posting
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_day_totals_add()
    """,
    """
    INSERT INTO ledger_daytotal (account_id, currency, day, kind, amount)
    SELECT p.account_id, p.currency, (p.effective_at AT TIME ZONE 'UTC')::date, e.kind, SUM(p.amount)
    FROM ledger_posting p JOIN ledger_journalentry e ON e.id = p.entry_id
    GROUP BY 1, 2, 3, 4
    """,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER posting_day_totals ON ledger_posting",
    "DROP FUNCTION ledger_day_totals_add()",
]
SQLITE = [
    """
    CREATE TRIGGER ledger_posting_day_totals AFTER INSERT ON ledger_posting
    BEGIN
        INSERT INTO ledger_daytotal (account_id, currency, day, kind, amount)
        VALUES (
            NEW.account_id, NEW.currency, date(NEW.effective_at),
            (SELECT kind FROM ledger_journalentry WHERE id = NEW.entry_id), NEW.amount
        );
    END
    """,
    """
    INSERT INTO ledger_daytotal (account_id, currency, day, kind, amount)
    SELECT p.account_id, p.currency, date(p.effective_at), e.kind, SUM(p.amount)
    FROM ledger_posting p JOIN ledger_journalentry e ON e.id = p.entry_id
    GROUP BY 1, 2, 3, 4
    """,
]
SQLITE_REVERSE = ["DROP TRIGGER ledger_posting_day_totals"]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_report_permissions"),
    ]

    operations = [
        migrations.CreateModel(
            name="DayTotal",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("currency", models.CharField(max_length=3, verbose_name="currency")),
                ("day", models.DateField(verbose_name="day (UTC)")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("payment_captured", "payment captured"),
                            ("refund", "refund"),
                            ("revenue_recognized", "revenue recognised"),
                            ("provider_fee", "provider fee"),
                            ("payout", "payout"),
                            ("reversal", "reversal"),
                        ],
                        max_length=32,
                        verbose_name="entry kind",
                    ),
                ),
                ("amount", models.BigIntegerField(verbose_name="amount (minor units, debit +)")),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="ledger.ledgeraccount",
                        verbose_name="account",
                    ),
                ),
            ],
            options={
                "verbose_name": "day total",
                "verbose_name_plural": "day totals",
                "indexes": [models.Index(fields=["day", "account"], name="ledger_day_total_day_idx")],
            },
        ),
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}),
        ),
    ]
