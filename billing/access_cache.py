"""A per-process cache of what the access answer is read from, invalidated by PostgreSQL itself.

The frontend polls `GET /api/v1/access/`; almost every poll asks about rows that have not
changed. Each web process keeps, per cinema user, the account id and the live subscription
(or none) that `billing.selectors.access_for_user` read, and applies the access rule to it on
every request with the billing clock: the cache holds rows, never a `has_access` verdict,
so the period end and the grace period are judged at the moment of each request.

Invalidation comes from the database. Triggers (billing/migrations/0007) send
`NOTIFY billing_access` for every inserted, updated or deleted subscription and billing
account (payload `a:<account id>`) and for every updated, deleted or truncated tariff or table
(payload `*`: forget everything). PostgreSQL delivers a notification only when the change is
committed, and whatever made the change (a request, a Celery task, admin, a psql session on
another machine) sends it. A listener thread in each process holds its own connection with
`LISTEN billing_access` and evicts the entries concerned.

**Freshness.** An answer reflects every committed change once that change's notification has
reached the process: normally within a millisecond or two of the commit, the time PostgreSQL
takes to signal the listening session and the listener thread to get the GIL. A poll in that
window may still see the row as it was just before the commit, exactly as a poll that read
the database a moment earlier would have.

**Failure.** Nothing is cached, and nothing is read from the cache, unless the listener is
connected and listening: before its first `LISTEN`, after any error or lost connection (the
cache is cleared at once, and filled again only after a new `LISTEN` succeeds), and whenever
the listener has not heard from PostgreSQL for `LIVENESS_SECONDS` (it sends `SELECT 1` after
each second of silence, so a connection that hangs instead of failing is noticed too). Every
request then reads the database, as without the cache. Notifications are never lost while
the connection stays up: PostgreSQL queues them for the listening session.

**The race a cache of reads must not lose.** A request may read a row just before another
transaction commits a change to it and store that row after the change's notification was
processed; the eviction would then come too early and the stale row would stay. So every
notification (and every clear) increments a generation counter; a request takes the
counter before its query and stores its row only if the counter has not moved since.
"""

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import psycopg2
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT
from psycopg2.extensions import connection as PgConnection

logger = logging.getLogger(__name__)

CHANNEL: Final = "billing_access"
FLUSH_PAYLOAD: Final = "*"
ACCOUNT_PAYLOAD_PREFIX: Final = "a:"
# Bounds each process's memory: an entry is a few hundred bytes.
MAX_ENTRIES: Final = 50_000
# After this long without news the listener asks PostgreSQL for a sign of life...
HEARTBEAT_SECONDS: Final = 1.0
# ...and after this long without any, requests stop trusting the cache.
LIVENESS_SECONDS: Final = 5.0
RECONNECT_MIN_SECONDS: Final = 0.5
RECONNECT_MAX_SECONDS: Final = 10.0

V = TypeVar("V")


@dataclass(frozen=True)
class Entry(Generic[V]):
    account_id: int
    value: V


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    stored: int = 0
    refused: int = 0  # rows not stored: a notification (or a failure) came during their query
    evicted: int = 0


class AccessCache(Generic[V]):
    """Rows keyed by cinema user id, trusted only while the listener is listening.

    Thread-safe: reads are single dictionary lookups; every change holds the lock.
    """

    def __init__(self, *, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._entries: dict[str, Entry[V]] = {}
        self._users_by_account: dict[int, str] = {}
        self._generation = 0
        self._listening = False
        self._heard_at = float("-inf")
        self._max_entries = max_entries
        self._clock = clock
        self.stats = Stats()

    def usable(self) -> bool:
        """Return whether the listener is listening and has heard from PostgreSQL lately."""
        return self._listening and self._clock() - self._heard_at < LIVENESS_SECONDS

    def get(self, user_id: str) -> Entry[V] | None:
        """Return the cached row of a user, or None: not cached, or the cache is not usable."""
        entry = self._entries.get(user_id) if self.usable() else None
        # Counters may lose an increment between threads; they are figures, not rules.
        if entry is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return entry

    def generation(self) -> int | None:
        """Return the token a request takes before its query, or None if it must not store."""
        return self._generation if self.usable() else None

    def store(self, user_id: str, *, account_id: int, value: V, generation: int) -> bool:
        """Keep a row read under `generation`, unless anything was invalidated since."""
        with self._lock:
            if generation != self._generation or not self.usable():
                self.stats.refused += 1
                return False
            self._forget_user(user_id)
            while len(self._entries) >= self._max_entries:
                # The oldest entry goes: dictionaries keep insertion order.
                self._forget_user(next(iter(self._entries)))
                self.stats.evicted += 1
            self._entries[user_id] = Entry(account_id=account_id, value=value)
            self._users_by_account[account_id] = user_id
            self.stats.stored += 1
            return True

    def __len__(self) -> int:
        return len(self._entries)

    def notified(self, payload: str) -> None:
        """Apply one notification: forget an account's row, or everything."""
        with self._lock:
            self._generation += 1
            if payload.startswith(ACCOUNT_PAYLOAD_PREFIX):
                user_id = self._users_by_account.get(int(payload.removeprefix(ACCOUNT_PAYLOAD_PREFIX)))
                if user_id is not None:
                    self._forget_user(user_id)
            else:
                # FLUSH_PAYLOAD, and anything this version does not know, forgets everything.
                self._clear()

    def listening_started(self) -> None:
        """Trust the cache from now on, starting empty: LISTEN has succeeded."""
        with self._lock:
            self._clear()
            self._listening = True
            self._heard_at = self._clock()

    def listening_lost(self) -> None:
        """Forget everything and stop caching until listening starts again."""
        with self._lock:
            self._listening = False
            self._clear()

    def heard(self) -> None:
        """Note that the listener's connection answered just now."""
        self._heard_at = self._clock()

    def _clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._users_by_account.clear()

    def _forget_user(self, user_id: str) -> None:
        entry = self._entries.pop(user_id, None)
        if entry is not None and self._users_by_account.get(entry.account_id) == user_id:
            del self._users_by_account[entry.account_id]


class Listener(threading.Thread):
    """Hold a connection with `LISTEN billing_access` and apply what arrives to a cache."""

    def __init__(self, *, cache: AccessCache[Any], connect: Callable[[], PgConnection]):
        super().__init__(name="billing-access-listener", daemon=True)
        self._cache = cache
        self._connect = connect
        self._stopping = threading.Event()
        # Written to by stop(), so that a listener waiting in select() wakes up at once.
        self._wake_read, self._wake_write = os.pipe()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close the connection and wait for the thread to end."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        if self.is_alive():
            self.join(timeout)
        for descriptor in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(descriptor)

    def run(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        while not self._stopping.is_set():
            connection: PgConnection | None = None
            try:
                connection = self._connect()
                connection.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
                with connection.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANNEL}")
                self._cache.listening_started()
                delay = RECONNECT_MIN_SECONDS
                self._listen(connection)
            except Exception:
                # Whatever failed (the connection, a payload, a bug), the cache must not
                # outlive it: forget everything and serve from the database until we listen again.
                if not self._stopping.is_set():
                    logger.warning(
                        "Access cache listener failed; caching stops until it reconnects.", exc_info=True
                    )
            finally:
                self._cache.listening_lost()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def _listen(self, connection: PgConnection) -> None:
        while not self._stopping.is_set():
            ready, _, _ = select.select([connection, self._wake_read], [], [], HEARTBEAT_SECONDS)
            if self._wake_read in ready:
                return
            if ready:
                connection.poll()
            else:
                # Silence: prove the connection still answers (and collect anything queued).
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            while connection.notifies:
                self._cache.notified(connection.notifies.pop(0).payload)
            self._cache.heard()


@dataclass(frozen=True)
class _Process:
    pid: int
    cache: AccessCache[Any] | None
    listener: Listener | None


_process: _Process | None = None
_process_lock = threading.Lock()


def access_cache() -> AccessCache[Any] | None:
    """Return this process's access cache, starting its listener on first use; None when off.

    Off when `BILLING_ACCESS_CACHE` is false and on any database but PostgreSQL. A forked
    process (a gunicorn worker) gets a cache and a listener of its own: threads do not
    survive a fork, and a connection must not be shared across one.
    """
    if not settings.BILLING_ACCESS_CACHE:
        return None
    process = _process
    if process is None or process.pid != os.getpid():
        process = _start()
    return process.cache


def _start() -> _Process:
    global _process
    with _process_lock:
        pid = os.getpid()
        if _process is not None and _process.pid == pid:
            return _process
        database = connections[DEFAULT_DB_ALIAS]
        if database.vendor != "postgresql":
            _process = _Process(pid=pid, cache=None, listener=None)
            return _process
        parameters = {
            "connect_timeout": 5,
            # Notice a dead peer even while waiting in select().
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            **database.get_connection_params(),
            "application_name": "billing-access-listener",
        }
        parameters.pop("cursor_factory", None)
        cache: AccessCache[Any] = AccessCache()
        listener = Listener(cache=cache, connect=lambda: _connect_listener(parameters))
        listener.start()
        _process = _Process(pid=pid, cache=cache, listener=listener)
        return _process


def _connect_listener(parameters: dict[str, Any]) -> PgConnection:
    return psycopg2.connect(**parameters)


def access_cache_stop() -> None:
    """Stop this process's listener and drop its cache; the next use starts afresh."""
    global _process
    with _process_lock:
        process, _process = _process, None
    if process is not None and process.listener is not None and process.pid == os.getpid():
        process.listener.stop()


def access_cache_wait_until_usable(timeout: float = 10.0) -> AccessCache[Any] | None:
    """Return the cache once its listener listens (for tests and benchmarks), or None if off."""
    cache = access_cache()
    deadline = time.monotonic() + timeout
    while cache is not None and not cache.usable():
        if time.monotonic() > deadline:
            raise TimeoutError("The access cache's listener did not start listening.")
        time.sleep(0.01)
    return cache
