"""The runs of `ledger_check` (one a day from beat); accounts' 0014_roles_ledger lets Accounting and Support read them."""

import core.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0002_books_hold_their_rules'),
    ]

    operations = [
        migrations.CreateModel(
            name='LedgerCheckRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('checked_at', core.fields.CreatedAtField(db_index=True, verbose_name='checked')),
                ('balanced', models.BooleanField(verbose_name='balanced')),
                ('entries', models.PositiveBigIntegerField(verbose_name='entries')),
                ('unbalanced_entries', models.PositiveBigIntegerField(verbose_name='unbalanced entries')),
                ('mismatch_count', models.PositiveBigIntegerField(verbose_name='mismatches')),
                ('mismatches', models.JSONField(blank=True, default=list, verbose_name='what disagrees')),
                ('balances', models.JSONField(blank=True, default=dict, verbose_name='balances')),
            ],
            options={
                'verbose_name': 'ledger check',
                'verbose_name_plural': 'ledger checks',
                'ordering': ['-checked_at'],
            },
        ),
    ]
