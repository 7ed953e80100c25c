"""The customer id and saved card leave the account: payments 0013 copied them into one row per provider."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0011_roles_cancel_subscription"),
        ("payments", "0013_provider_customers"),
    ]

    operations = [
        migrations.RemoveField(model_name="billingaccount", name="stripe_customer_id"),
        migrations.RemoveField(model_name="billingaccount", name="default_payment_method_id"),
        migrations.RemoveField(model_name="billingaccount", name="card_brand"),
        migrations.RemoveField(model_name="billingaccount", name="card_last4"),
        migrations.RemoveField(model_name="billingaccount", name="card_exp_month"),
        migrations.RemoveField(model_name="billingaccount", name="card_exp_year"),
    ]
