"""Let accounting read the ledger (its entries, accounts, reports, exports) and the daily ledger check; support sees the check too."""

from django.db import migrations

# Role → {(app label, model name): codenames} added to the roles of 0002_roles.
GRANTS = {
    "Accounting": {
        ("ledger", "journalentry"): ("view_journalentry", "view_ledger_reports", "export_journalentry"),
        ("ledger", "ledgeraccount"): ("view_ledgeraccount",),
        ("ledger", "ledgercheckrun"): ("view_ledgercheckrun",),
    },
    "Support": {
        ("ledger", "ledgercheckrun"): ("view_ledgercheckrun",),
    },
}
NAMES = {
    "view_ledger_reports": "Can view the ledger's reports",
    "export_journalentry": "Can export journal entries",
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
        # The roles exist since 0002_roles; a database emptied after it (a test's flush, then a
        # migration run again) gets the role back with these grants rather than a failed migrate.
        group, _ = Group.objects.using(db_alias).get_or_create(name=role)
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
        ("accounts", "0013_clock_timestamps"),
        ("ledger", "0004_report_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
