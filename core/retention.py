"""Deleting old rows in small batches, so pruning a big table never holds locks for long.

Each app says which of its rows may go (old enough, done with, referenced by nothing) and
`rows_delete_in_batches` deletes them a batch at a time, each batch in a transaction of its
own. The rows are walked in the order of an indexed timestamp (then the primary key) with a
cursor, so a row the app keeps is read once per run, however many batches follow it.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet

logger = logging.getLogger(__name__)


def retention_cutoff(*, now: datetime, days: int) -> datetime | None:
    """Return the moment before which rows kept `days` days may go; None when `days` is 0 (keep forever)."""
    return now - timedelta(days=days) if days > 0 else None


def rows_delete_in_batches(*, rows: QuerySet[Any], order_by: str, batch_size: int) -> int:
    """Delete every row of `rows`, `batch_size` at a time in order of `order_by`; return how many went.

    The filter of `rows` is applied again when each batch is deleted, so a row that changed
    since it was read (an event sent for processing again, a delivery to redeliver) stays.
    """
    model: type[Model] = rows.model
    deleted = 0
    after: tuple[Any, Any] | None = None
    while True:
        page = rows
        if after is not None:
            at, pk = after
            page = page.filter(**{f"{order_by}__gte": at}).exclude(**{order_by: at, "pk__lte": pk})
        with transaction.atomic():
            batch = list(page.order_by(order_by, "pk").values_list(order_by, "pk")[:batch_size])
            if batch:
                _, per_model = rows.filter(pk__in=[pk for _, pk in batch]).delete()
                deleted += per_model.get(model._meta.label, 0)
        if len(batch) < batch_size:
            break
        after = batch[-1]
    if deleted:
        logger.info("pruned %d %s", deleted, model._meta.verbose_name_plural)
    return deleted
