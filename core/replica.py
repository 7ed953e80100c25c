"""Reads that may come from the read replica: only those inside `replica_reads()`, never by default.

A page that only shows figures (the accounting dashboard, reports, exports) wraps its reading
in `with replica_reads():` (or decorates a function with `@replica_reads()`), and the database
router (config/db_router.py) then sends its queries to the replica when one is configured
(DATABASE_REPLICA_URL). A replica may lag the primary by a moment, so nothing that writes, or
decides anything about money, runs inside it; and even there, a read inside a transaction on
the primary (a `select_for_update`, a read after a write) stays on the primary. Without a
replica the context changes nothing.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Let the reads of this block (or decorated function) go to the read replica, if there is one."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def replica_reads_allowed() -> bool:
    """Return whether the code running now asked for its reads to come from the replica."""
    return _replica_reads.get()
