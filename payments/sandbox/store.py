"""The sandbox's state: Stripe objects, idempotency keys and webhook deliveries in SQLite.

One SQLite connection (in memory by default, a file with `--state`) behind one
re-entrant lock: every API operation runs as one transaction, so concurrent
requests see each other's objects whole and `make run` keeps its Stripe objects
across restarts. Objects are kept as the JSON the API answers with, plus an
`internal` JSON the API never shows (line items, which test card a card is).
"""

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    data TEXT NOT NULL,
    internal TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS objects_by_type ON objects (type, seq);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    params TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts TEXT NOT NULL DEFAULT '[]',
    next_attempt_at REAL NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event_id);
"""

# Fixed SQL fragments for list filters; values always go through placeholders.
_CREATED_OPS = {"gt": "created > ?", "gte": "created >= ?", "lt": "created < ?", "lte": "created <= ?"}


class Store:
    """Thread-safe storage of everything the sandbox knows."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn = sqlite3.connect(
            str(path) if path is not None else ":memory:", check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            if path is not None:
                # A development state file: losing the last transaction to a power cut is fine,
                # waiting for an fsync on every API call is not.
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            # A delivery cut short by a stop is simply attempted again.
            self._conn.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'in_flight'")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block alone and atomically; nested blocks join the outer one."""
        with self._lock:
            if self._depth == 0:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def reset(self) -> None:
        """Forget every object, key and delivery."""
        with self.transaction():
            for table in ("objects", "idempotency_keys", "deliveries"):
                self._conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    # Objects

    def insert(self, obj: Obj, internal: Obj | None = None) -> None:
        """Store a new object."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO objects (id, type, created, data, internal) VALUES (?, ?, ?, ?, ?)",
                (obj["id"], obj["object"], obj["created"], json.dumps(obj), json.dumps(internal or {})),
            )

    def save(self, obj: Obj, internal: Obj | None = None) -> None:
        """Replace a stored object (and its internal part when given)."""
        with self.transaction():
            if internal is None:
                self._conn.execute("UPDATE objects SET data = ? WHERE id = ?", (json.dumps(obj), obj["id"]))
            else:
                self._conn.execute(
                    "UPDATE objects SET data = ?, internal = ? WHERE id = ?",
                    (json.dumps(obj), json.dumps(internal), obj["id"]),
                )

    def get(self, object_id: str, type_: str | None = None) -> Obj | None:
        """Return the object with this id (and type, when given), or None."""
        with self._lock:
            row = self._conn.execute("SELECT type, data FROM objects WHERE id = ?", (object_id,)).fetchone()
        if row is None or (type_ is not None and row["type"] != type_):
            return None
        data: Obj = json.loads(row["data"])
        return data

    def internal(self, object_id: str) -> Obj:
        """Return the part of an object the API never shows."""
        with self._lock:
            row = self._conn.execute("SELECT internal FROM objects WHERE id = ?", (object_id,)).fetchone()
        data: Obj = json.loads(row["internal"]) if row else {}
        return data

    def all(self, type_: str) -> list[Obj]:
        """Return every object of a type, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM objects WHERE type = ? ORDER BY seq", (type_,)
            ).fetchall()
        return [json.loads(row["data"]) for row in rows]

    def find(self, type_: str, field: str, value: Any) -> list[Obj]:
        """Return objects of a type whose top-level `field` equals `value`, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM objects WHERE type = ? AND json_extract(data, ?) = ? ORDER BY seq",
                (type_, f"$.{field}", value),
            ).fetchall()
        return [json.loads(row["data"]) for row in rows]

    def seq_of(self, object_id: str, type_: str) -> int | None:
        """Return the insertion order of an object, used as a pagination cursor."""
        with self._lock:
            row = self._conn.execute(
                "SELECT seq FROM objects WHERE id = ? AND type = ?", (object_id, type_)
            ).fetchone()
        return int(row["seq"]) if row else None

    def page(
        self,
        type_: str,
        *,
        limit: int,
        after_seq: int | None = None,
        before_seq: int | None = None,
        created: dict[str, int] | None = None,
        field_in: tuple[str, list[str]] | None = None,
    ) -> tuple[list[Obj], bool]:
        """Return one page of objects newest first, and whether more lie beyond it.

        `after_seq` continues towards older objects (Stripe's `starting_after`),
        `before_seq` towards newer ones (`ending_before`).
        """
        clauses = ["type = ?"]
        args: list[Any] = [type_]
        for op, value in (created or {}).items():
            clauses.append(_CREATED_OPS[op])
            args.append(value)
        if field_in is not None:
            field, values = field_in
            clauses.append("json_extract(data, ?) IN (SELECT value FROM json_each(?))")
            args.extend([f"$.{field}", json.dumps(values)])
        if after_seq is not None:
            clauses.append("seq < ?")
            args.append(after_seq)
        if before_seq is not None:
            clauses.append("seq > ?")
            args.append(before_seq)
        order = "ASC" if before_seq is not None else "DESC"
        sql = f"SELECT data FROM objects WHERE {' AND '.join(clauses)} ORDER BY seq {order} LIMIT ?"  # noqa: S608 - fixed fragments, values are placeholders
        args.append(limit + 1)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        has_more = len(rows) > limit
        items = [json.loads(row["data"]) for row in rows[:limit]]
        if before_seq is not None:
            items.reverse()
        return items, has_more

    # Idempotency keys

    def idempotent_result(self, key: str) -> sqlite3.Row | None:
        """Return what was stored for an idempotency key."""
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(
                "SELECT * FROM idempotency_keys WHERE key = ?", (key,)
            ).fetchone()
        return row

    def remember_result(
        self,
        *,
        key: str,
        method: str,
        path: str,
        params: str,
        status: int,
        body: str,
        request_id: str,
        now: float,
    ) -> None:
        """Store the response given to a request with an idempotency key."""
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, method, path, params, status, body, request_id, now),
            )

    def forget_keys_before(self, moment: float) -> None:
        """Drop idempotency keys older than `moment`: Stripe keeps them 24 hours."""
        with self.transaction():
            self._conn.execute("DELETE FROM idempotency_keys WHERE created < ?", (moment,))

    # Webhook deliveries

    def add_delivery(
        self, *, delivery_id: str, event_id: str, event_type: str, now: float, due: float | None = None
    ) -> None:
        """Queue an event for delivery to the webhook endpoint, from `due` on (default: now)."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO deliveries (id, event_id, event_type, status, next_attempt_at, created)"
                " VALUES (?, ?, ?, 'pending', ?, ?)",
                (delivery_id, event_id, event_type, now if due is None else due, now),
            )

    def claim_due_deliveries(self, now: float, limit: int) -> list[Obj]:
        """Mark up to `limit` due deliveries in flight and return them."""
        with self.transaction():
            rows = self._conn.execute(
                "SELECT * FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, seq LIMIT ?",
                (now, limit),
            ).fetchall()
            for row in rows:
                self._conn.execute("UPDATE deliveries SET status = 'in_flight' WHERE id = ?", (row["id"],))
        return [self._delivery(row) for row in rows]

    def next_delivery_due(self) -> float | None:
        """Return when the earliest pending delivery is due."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(next_attempt_at) AS due FROM deliveries WHERE status = 'pending'"
            ).fetchone()
        return float(row["due"]) if row and row["due"] is not None else None

    def finish_attempt(self, delivery_id: str, *, attempt: Obj, status: str, next_attempt_at: float) -> None:
        """Record one delivery attempt and the delivery's new status."""
        with self.transaction():
            row = self._conn.execute(
                "SELECT attempts FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if row is None:  # reset while the attempt was under way
                return
            attempts = [*json.loads(row["attempts"]), attempt]
            self._conn.execute(
                "UPDATE deliveries SET attempts = ?, status = ?, next_attempt_at = ? WHERE id = ?",
                (json.dumps(attempts), status, next_attempt_at, delivery_id),
            )

    def deliveries(
        self, *, event_id: str | None = None, status: str | None = None, event_type: str | None = None
    ) -> list[Obj]:
        """Return deliveries, oldest first, optionally filtered."""
        clauses = ["1 = 1"]
        args: list[Any] = []
        for column, value in (("event_id", event_id), ("status", status), ("event_type", event_type)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT * FROM deliveries WHERE {' AND '.join(clauses)} ORDER BY seq"  # noqa: S608 - fixed column names
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [self._delivery(row) for row in rows]

    def pending_webhooks(self, event_ids: list[str]) -> dict[str, int]:
        """Return, per event, how many deliveries have not succeeded or given up yet."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT event_id, COUNT(*) AS n FROM deliveries"
                " WHERE status IN ('pending', 'in_flight') AND event_id IN (SELECT value FROM json_each(?))"
                " GROUP BY event_id",
                (json.dumps(event_ids),),
            ).fetchall()
        return {row["event_id"]: int(row["n"]) for row in rows}

    @staticmethod
    def _delivery(row: sqlite3.Row) -> Obj:
        return {
            "id": row["id"],
            "event": row["event_id"],
            "type": row["event_type"],
            "status": row["status"],
            "attempts": json.loads(row["attempts"]),
            "next_attempt_at": row["next_attempt_at"],
            "created": row["created"],
        }
