"""Create the staff roles of the billing admin as groups with their permissions."""

from django.db import migrations

# Role → {(app label, model name): actions}. A staff member gets a role by joining the group.
ROLES = {
    "Manager": {
        ("tariffs", "tariff"): ("add", "change", "delete", "view"),
        ("billing", "subscription"): ("view",),
    },
    "Support": {
        ("accounts", "billingaccount"): ("view",),
        ("billing", "subscription"): ("view",),
        ("payments", "payment"): ("view",),
        ("payments", "refund"): ("add", "view"),
    },
    "Accounting": {
        ("tariffs", "tariff"): ("view",),
        ("accounts", "billingaccount"): ("view",),
        ("billing", "subscription"): ("view",),
        ("payments", "payment"): ("view",),
        ("payments", "refund"): ("view",),
    },
}


def create_roles(apps, schema_editor):
    # Permissions are normally created by post_migrate, after every migration has run;
    # they are created here (the same rows post_migrate would make) so the groups get them.
    db_alias = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for role, grants in ROLES.items():
        permissions = []
        for (app_label, model_name), actions in grants.items():
            model = apps.get_model(app_label, model_name)
            content_type, _ = ContentType.objects.using(db_alias).get_or_create(
                app_label=app_label, model=model_name
            )
            for action in actions:
                permission, _ = Permission.objects.using(db_alias).get_or_create(
                    content_type=content_type,
                    codename=f"{action}_{model_name}",
                    defaults={"name": f"Can {action} {model._meta.verbose_name_raw}"},
                )
                permissions.append(permission)
        group, _ = Group.objects.using(db_alias).get_or_create(name=role)
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    # The permissions stay: they belong to the models, and post_migrate keeps them.
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("tariffs", "0001_initial"),
        ("billing", "0001_initial"),
        ("payments", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
