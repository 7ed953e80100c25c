"""Rows say which provider they belong to; the provider's own ids move to `provider_*` columns.

Columns are renamed in place (no data is copied or lost); every existing row is Stripe's.
"""

from django.db import migrations, models


def _provider_field() -> models.CharField:
    return models.CharField(
        choices=[("stripe", "Stripe")], default="stripe", editable=False, max_length=16, verbose_name="provider"
    )


class Migration(migrations.Migration):
    dependencies = [("payments", "0010_unbooked_charges_runs")]

    operations = [
        migrations.RenameField("payment", "stripe_checkout_session_id", "provider_checkout_id"),
        migrations.RenameField("payment", "stripe_payment_intent_id", "provider_payment_id"),
        migrations.RenameField("payment", "stripe_charge_id", "provider_charge_id"),
        migrations.RenameField("refund", "stripe_refund_id", "provider_refund_id"),
        migrations.RenameField("checkoutsession", "stripe_session_id", "provider_session_id"),
        migrations.AddField("payment", "provider", _provider_field()),
        migrations.AddField("refund", "provider", _provider_field()),
        migrations.AddField("checkoutsession", "provider", _provider_field()),
    ]
