"""Staff members of a role for tests, and the roles given back to a flushed database.

The roles are groups made by data migrations, and flushing a database (what a transactional
test does when it ends) deletes them. Django's own remedy, `serialized_rollback`, does not
reach tests that drive a browser with Playwright, whose event loop gives the test another
database connection than the one the serialised data hangs on; so these tests run the role
migrations' own functions again instead, in order.
"""

import importlib
from types import SimpleNamespace

from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connection


def staff_member(role: str, username: str = "") -> User:
    """Create a staff user in a role group (Manager, Support, Accounting), named after it by default."""
    user = User.objects.create_user(username=username or role.lower(), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


ROLE_MIGRATIONS = (
    "0002_roles",
    "0005_roles_stripe_events",
    "0006_roles_promo_codes",
    "0007_roles_reconciliation",
    "0008_roles_notifications",
    "0009_roles_refunds",
    "0010_roles_back_office",
    "0011_roles_cancel_subscription",
    "0014_roles_ledger",
    "0015_roles_change_plan",
)


def roles_restore() -> None:
    """Create the roles with exactly the permissions the migrations give them, if they are gone."""
    if Group.objects.exists():
        return
    schema_editor = SimpleNamespace(connection=connection)
    for name in ROLE_MIGRATIONS:
        migration = importlib.import_module(f"accounts.migrations.{name}")
        apply = migration.create_roles if hasattr(migration, "create_roles") else migration.grant
        # Today's models stand in for the historical ones: the functions only look up groups,
        # permissions, content types and verbose names, which are the same.
        apply(apps, schema_editor)
