"""The database router: reads go to the read replica only where code asked for it, the rest to the primary.

- Reads go to the replica (DATABASE_REPLICA_ALIAS, set by DATABASE_REPLICA_URL) only inside
  `core.replica.replica_reads()`, and even there not while the primary has a transaction open
  in this thread: a `select_for_update` (always inside one) and a read after a write must see
  the primary, never a copy a moment behind. So whatever decides money reads the primary,
  called from wherever.
- Writes always go to the primary; migrations run on the primary only (the replica copies it).
- Rows read from either may be related to each other: they are the same data.
"""

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

from core.replica import replica_reads_allowed


def replica_alias() -> str | None:
    """Return the alias of the read replica, or None when there is none."""
    alias: str | None = getattr(settings, "DATABASE_REPLICA_ALIAS", None)
    return alias if alias in settings.DATABASES else None


class ReplicaRouter:
    """Send the reads of `replica_reads()` blocks to the replica; everything else to the primary."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        replica = replica_alias()
        if replica is None or not replica_reads_allowed():
            return None
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return replica

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        ours = {DEFAULT_DB_ALIAS, replica_alias()}
        if obj1._state.db in ours and obj2._state.db in ours:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS
