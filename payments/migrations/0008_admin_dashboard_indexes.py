# Written by hand: Django cannot serialize the UTC of the dashboard's day and month
# expressions (datetime.timezone.utc), so makemigrations stops at them.

import datetime

import django.db.models.functions.datetime
from django.db import migrations, models

PAID = models.Q(("status__in", ["succeeded", "partially_refunded", "refunded"]))

# Statistics of the dashboard's grouping expressions: PostgreSQL keeps none for the expressions
# of partial indexes, so without these it guesses a few thousand rows where a year has hundreds
# of thousands, and picks plans for the guess (a nested loop over every declined renewal, no
# parallel workers). ANALYZE (autovacuum's included) fills them in.
EXPRESSION_STATISTICS = {
    "payment_paid_day_stats": "date_trunc('day', paid_at AT TIME ZONE 'UTC')",
    "payment_paid_month_stats": "date_trunc('month', paid_at AT TIME ZONE 'UTC')",
    "payment_period_month_stats": "date_trunc('month', period_start AT TIME ZONE 'UTC')",
}


class PostgresOnlySQL(migrations.RunSQL):
    """Run SQL on PostgreSQL only: SQLite, which `make run` uses, has no CREATE STATISTICS."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0007_back_office_permissions"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(fields=["currency", "-created_at"], name="payment_currency_created_idx"),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(fields=["paid_at"], name="payment_paid_at_idx"),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                django.db.models.functions.datetime.TruncDay("paid_at", tzinfo=datetime.timezone.utc),
                models.F("currency"),
                models.F("amount"),
                models.F("refunded_amount"),
                models.F("paid_at"),
                condition=PAID,
                name="payment_revenue_day_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                django.db.models.functions.datetime.TruncMonth("paid_at", tzinfo=datetime.timezone.utc),
                models.F("currency"),
                models.F("amount"),
                models.F("refunded_amount"),
                models.F("paid_at"),
                condition=PAID,
                name="payment_revenue_month_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                django.db.models.functions.datetime.TruncMonth("period_start", tzinfo=datetime.timezone.utc),
                models.F("status"),
                models.F("subscription_id"),
                models.F("period_start"),
                condition=models.Q(("failed_attempts__gt", 0), ("kind", "renewal")),
                name="payment_declined_renewal_idx",
            ),
        ),
        PostgresOnlySQL(
            sql=[
                f"CREATE STATISTICS {name} ON ({expression}) FROM payments_payment"
                for name, expression in EXPRESSION_STATISTICS.items()
            ],
            reverse_sql=[f"DROP STATISTICS IF EXISTS {name}" for name in EXPRESSION_STATISTICS],
        ),
    ]
