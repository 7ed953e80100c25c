# Timestamps stamped by the billing clock (core.fields) instead of auto_now(_add).
# Nothing changes in the database: the columns stay as they are.

import core.fields
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0010_cancel_subscription_permission"),
    ]

    operations = [
        migrations.AlterField(
            model_name='idempotentrequest',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='subscription',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='subscription',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
    ]
