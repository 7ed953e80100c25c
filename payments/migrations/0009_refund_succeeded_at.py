"""Record when each refund succeeded; refunds that already did get their last change's time."""

from django.db import migrations, models
from django.db.models import F


def backfill(apps, schema_editor):
    # A succeeded refund is final and its row is not written again, so its last change is
    # when it succeeded, to the moment our service learned of it.
    Refund = apps.get_model("payments", "Refund")
    Refund.objects.filter(status="succeeded", succeeded_at__isnull=True).update(succeeded_at=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0008_admin_dashboard_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="refund",
            name="succeeded_at",
            field=models.DateTimeField(blank=True, db_index=True, null=True, verbose_name="succeeded at"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
