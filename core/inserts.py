"""Insert a row unless a unique rule already holds its twin, in one statement."""

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model, Q
from django.db.models.sql import Query


def insert_or_ignore(instance: Model, *, conflict_fields: Sequence[str], partial: Q | None = None) -> bool:
    """Insert `instance` unless a row with the same `conflict_fields` exists; return whether it was.

    One `INSERT … ON CONFLICT (…) DO NOTHING RETURNING pk` instead of an insert in a savepoint
    that a duplicate turns into an exception and a rollback: in autocommit it is one round trip,
    and inside a caller's transaction a duplicate does not abort it. Only the unique rule on
    `conflict_fields` is ignored: any other violation still raises IntegrityError. On insert the
    instance gets its primary key; field defaults and `pre_save` (the clock's `created_at`)
    apply as in `save()`. No signals are sent. A partial unique rule (`UniqueConstraint` with a
    `condition`) is named by its fields and, as `partial`, its condition: the database finds
    its index only with both. The new row stays locked by the caller's transaction.
    """
    meta = instance._meta
    using = router.db_for_write(type(instance), instance=instance)
    connection = connections[using]
    quote = connection.ops.quote_name
    pk = meta.pk
    if pk is None:  # only an abstract model has none, and it has no table either
        raise TypeError(f"{meta.label} has no table to insert into")
    fields = [field for field in meta.concrete_fields if not (field.primary_key and instance.pk is None)]
    values = [field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields]
    by_name = {field.name: field for field in meta.concrete_fields}
    conflict_columns = ", ".join(quote(by_name[name].column) for name in conflict_fields)
    conflict_where, where_params = _condition_sql(type(instance), partial, connection)
    # Only names from the model's own metadata, quoted, go into the text; values are parameters.
    columns = ", ".join(quote(field.column) for field in fields)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({conflict_columns}){conflict_where} DO NOTHING RETURNING {quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *where_params])
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = using
    return True


def _condition_sql(model: type[Model], condition: Q | None, connection: Any) -> tuple[str, list[Any]]:
    """Return ` WHERE <condition>` as the database writes it, with its parameters ("" for none)."""
    if condition is None:
        return "", []
    query = Query(model=model, alias_cols=False)
    sql, params = query.build_where(condition).as_sql(query.get_compiler(connection=connection), connection)
    return f" WHERE {sql}", list(params)
