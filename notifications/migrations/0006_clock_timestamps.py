# Timestamps stamped by the billing clock (core.fields) instead of auto_now(_add).
# Nothing changes in the database: the columns stay as they are.

import core.fields
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0005_refund_request_rejected_notice"),
    ]

    operations = [
        migrations.AlterField(
            model_name='eventdelivery',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='eventendpoint',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='eventendpoint',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
        migrations.AlterField(
            model_name='notice',
            name='created_at',
            field=core.fields.CreatedAtField(db_index=True, verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='notice',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
    ]
