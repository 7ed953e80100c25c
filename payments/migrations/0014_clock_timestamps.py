# Timestamps stamped by the billing clock (core.fields) instead of auto_now(_add).
# Nothing changes in the database: the columns stay as they are.

import core.fields
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0013_provider_customers"),
    ]

    operations = [
        migrations.AlterField(
            model_name='checkoutsession',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='checkoutsession',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='created_at',
            field=core.fields.CreatedAtField(db_index=True, verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
        migrations.AlterField(
            model_name='reconciliationcursor',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
        migrations.AlterField(
            model_name='reconciliationrun',
            name='started_at',
            field=core.fields.CreatedAtField(db_index=True, verbose_name='started'),
        ),
        migrations.AlterField(
            model_name='refund',
            name='created_at',
            field=core.fields.CreatedAtField(db_index=True, verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='refund',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
        migrations.AlterField(
            model_name='refundrequest',
            name='created_at',
            field=core.fields.CreatedAtField(db_index=True, verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='webhookevent',
            name='received_at',
            field=core.fields.CreatedAtField(db_index=True, verbose_name='received'),
        ),
    ]
