"""Drop the receivers' answers kept in event deliveries' last errors: staff see the status only.

Failed deliveries used to keep the first 500 bytes of what the receiver answered
("HTTP 500: <body>"), which let anyone who could add an endpoint read what any URL answers.
"""

from django.db import migrations
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat


def keep_the_status_only(apps, schema_editor):
    EventDelivery = apps.get_model("notifications", "EventDelivery")
    EventDelivery.objects.filter(last_error__startswith="HTTP ", last_status_code__isnull=False).update(
        last_error=Concat(Value("HTTP "), Cast("last_status_code", output_field=CharField()))
    )


class Migration(migrations.Migration):
    dependencies = [("notifications", "0003_ending_notice_reference")]

    # The answers are gone for good: going back leaves the short form.
    operations = [migrations.RunPython(keep_the_status_only, migrations.RunPython.noop)]
