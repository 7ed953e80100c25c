"""Let support see notices and events and send them again, and accounting see them."""

from django.db import migrations

# Role → {(app label, model name): codenames} added to the roles of 0002_roles.
GRANTS = {
    "Support": {
        ("notifications", "notice"): ("view_notice", "resend_notice"),
        ("notifications", "outboxevent"): ("view_outboxevent",),
        ("notifications", "eventdelivery"): ("view_eventdelivery", "redeliver_eventdelivery"),
    },
    "Accounting": {
        ("notifications", "notice"): ("view_notice",),
        ("notifications", "outboxevent"): ("view_outboxevent",),
        ("notifications", "eventdelivery"): ("view_eventdelivery",),
    },
}
NAMES = {"resend_notice": "Can send notices again", "redeliver_eventdelivery": "Can redeliver events"}


def grant(apps, schema_editor):
    # As in 0002_roles, the permissions are created here because post_migrate runs later.
    db_alias = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for role, grants in GRANTS.items():
        group = Group.objects.using(db_alias).get(name=role)
        for (app_label, model_name), codenames in grants.items():
            model = apps.get_model(app_label, model_name)
            content_type, _ = ContentType.objects.using(db_alias).get_or_create(app_label=app_label, model=model_name)
            for codename in codenames:
                default_name = f"Can view {model._meta.verbose_name_raw}"
                permission, _ = Permission.objects.using(db_alias).get_or_create(
                    content_type=content_type, codename=codename, defaults={"name": NAMES.get(codename, default_name)}
                )
                group.permissions.add(permission)


def revoke(apps, schema_editor):
    db_alias = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, grants in GRANTS.items():
        group = Group.objects.using(db_alias).filter(name=role).first()
        if group is None:
            continue
        for (app_label, _), codenames in grants.items():
            group.permissions.remove(
                *Permission.objects.using(db_alias).filter(content_type__app_label=app_label, codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_roles_reconciliation"),
        ("notifications", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
