# Timestamps stamped by the billing clock (core.fields) instead of auto_now(_add).
# Nothing changes in the database: the columns stay as they are.

import core.fields
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0012_customers_at_providers"),
    ]

    operations = [
        migrations.AlterField(
            model_name='billingaccount',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='billingaccount',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
    ]
