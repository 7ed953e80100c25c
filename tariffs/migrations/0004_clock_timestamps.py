# Timestamps stamped by the billing clock (core.fields) instead of auto_now(_add).
# Nothing changes in the database: the columns stay as they are.

import core.fields
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("tariffs", "0003_tariff_names_in_russian"),
    ]

    operations = [
        migrations.AlterField(
            model_name='promocode',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='promocode',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
        migrations.AlterField(
            model_name='promoredemption',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='redeemed at'),
        ),
        migrations.AlterField(
            model_name='tariff',
            name='created_at',
            field=core.fields.CreatedAtField(verbose_name='created'),
        ),
        migrations.AlterField(
            model_name='tariff',
            name='updated_at',
            field=core.fields.UpdatedAtField(verbose_name='updated'),
        ),
    ]
