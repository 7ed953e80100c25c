"""Open the back office's new doors: goodwill extensions to support; exports, the dashboard,
the reconciliation report and the audit log to accounting."""

from django.db import migrations

# Role → {(app label, model name): codenames} added to the roles of 0002_roles.
GRANTS = {
    "Support": {
        ("billing", "subscription"): ("extend_subscription",),
    },
    "Accounting": {
        ("payments", "payment"): ("export_payment", "view_dashboard", "view_reconciliation_report"),
        ("payments", "refund"): ("export_refund",),
        ("auditlog", "logentry"): ("view_logentry",),
    },
}
NAMES = {
    "extend_subscription": "Can extend a subscription as goodwill",
    "export_payment": "Can export payments",
    "view_dashboard": "Can view the accounting dashboard",
    "view_reconciliation_report": "Can view the daily reconciliation report",
    "export_refund": "Can export refunds",
}


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
        ("accounts", "0009_roles_refunds"),
        ("billing", "0005_back_office_permissions"),
        ("payments", "0007_back_office_permissions"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
