"""Let support change a viewer's plan from admin (billing/admin/plan_change.py), with the viewer's rules."""

from django.db import migrations

# Role → {(app label, model name): codenames} added to the roles of 0002_roles.
GRANTS = {
    "Support": {
        ("billing", "subscription"): ("change_subscription_plan",),
    },
}
NAMES = {"change_subscription_plan": "Can change a subscription's plan for a viewer"}


def _name(codename, model):
    if codename in NAMES:
        return NAMES[codename]
    return f"Can {codename.split('_', 1)[0]} {model._meta.verbose_name_raw}"


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
            content_type, _ = ContentType.objects.using(db_alias).get_or_create(
                app_label=app_label, model=model_name
            )
            for codename in codenames:
                permission, _ = Permission.objects.using(db_alias).get_or_create(
                    content_type=content_type, codename=codename, defaults={"name": _name(codename, model)}
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
        for (app_label, model_name), codenames in grants.items():
            group.permissions.remove(
                *Permission.objects.using(db_alias).filter(
                    content_type__app_label=app_label, content_type__model=model_name, codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0014_roles_ledger"),
        ("billing", "0012_plan_change"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
