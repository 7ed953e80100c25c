from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_trial_card_fingerprint"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="subscription",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("extend_subscription", "Can extend a subscription as goodwill"),
                    ("cancel_subscription", "Can cancel a subscription for a viewer"),
                ],
                "verbose_name": "subscription",
                "verbose_name_plural": "subscriptions",
            },
        ),
    ]
