"""Give the ending-soon and trial-ending notices already recorded the period end as reference.

Those notices are now recorded once per period end (a goodwill extension moves the end and the
viewer is told again); without this, every subscription already told of its end would be told
a second time on the first run after the upgrade.
"""

from django.db import migrations

ENDING_KINDS = ("expiring_soon", "trial_ending")


def set_reference(apps, schema_editor):
    Notice = apps.get_model("notifications", "Notice")
    for notice in Notice.objects.filter(kind__in=ENDING_KINDS, reference="").iterator():
        period_end = (notice.context or {}).get("period_end")
        if period_end:
            notice.reference = period_end
            notice.save(update_fields=["reference"])


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_subscription_extended_event"),
    ]

    operations = [migrations.RunPython(set_reference, migrations.RunPython.noop)]
