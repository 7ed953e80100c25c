# Written by hand: Django cannot serialize the UTC of the month expression
# (datetime.timezone.utc), so makemigrations stops at it.

import datetime

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_back_office_permissions"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["status", "-created_at"], name="subscription_status_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["tariff", "-created_at"], name="subscription_tariff_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["currency", "-created_at"], name="subscription_currency_idx"),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(
                models.F("status"),
                models.F("currency"),
                models.F("tariff"),
                models.F("amount"),
                name="subscription_mrr_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(
                django.db.models.functions.datetime.TruncMonth("created_at", tzinfo=datetime.timezone.utc),
                models.F("created_at"),
                condition=models.Q(("billing_anchor__isnull", False)),
                name="subscription_started_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(
                condition=models.Q(("ended_at__isnull", False)),
                fields=["ended_at"],
                name="subscription_ended_idx",
            ),
        ),
    ]
