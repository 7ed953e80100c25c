# The retention job deletes delivered deliveries oldest first (notifications/services/retention.py):
# this index finds them without reading the pending ones or the whole table.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0006_clock_timestamps"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="eventdelivery",
            index=models.Index(
                condition=models.Q(("status", "delivered")),
                fields=["created_at"],
                name="delivery_delivered_idx",
            ),
        ),
    ]
