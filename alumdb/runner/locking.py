"""The migration lock: one run at a time, never two runs inside one file.

A transaction-scoped advisory lock for ordinary files (it works through a pooler in
transaction mode), a session lock for ``-- alumdb:no-transaction`` files. Waiting is
polling: each try ends at once, so a waiter never holds a snapshot that a
``CREATE INDEX CONCURRENTLY`` of the run holding the lock would wait for.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from alumdb import blockers
from alumdb.catalog import Migration
from alumdb.errors import LockWaitTimeout, MigrationFailed
from alumdb.runner.events import Event, EventSink, ignore
from alumdb.runner.lock_retry import DEFAULT_WAIT_FOR_LOCK, advisory_gave_up, advisory_wait_line

# "alumdb" in ASCII. Operators find a running migration with
#   SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 24940 AND objid = 1970103394;
ADVISORY_LOCK_KEY = 0x616C756D6462
LOCK_POLL = 0.1  # seconds between tries, at most, while another run holds the lock
# The sessions holding the lock (its bigint key, which pg_locks splits in two).
LOCK_HOLDERS = sql.SQL(
    "SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = {key}"
).format(key=sql.Literal(ADVISORY_LOCK_KEY))
_TRY_XACT = sql.SQL("SELECT pg_try_advisory_xact_lock({})").format(sql.Literal(ADVISORY_LOCK_KEY))
_TRY_SESSION = sql.SQL("SELECT pg_try_advisory_lock({})").format(sql.Literal(ADVISORY_LOCK_KEY))
UNLOCK_SESSION = sql.SQL("SELECT pg_advisory_unlock({})").format(sql.Literal(ADVISORY_LOCK_KEY))


def begin_locked(
    conn: psycopg.Connection[Any], on_event: EventSink, bound: float = DEFAULT_WAIT_FOR_LOCK
) -> float:
    """Open a transaction that holds the migration lock; return the seconds waited.

    Each try is a transaction of its own, rolled back at once when another run holds
    the lock: a run that waits keeps no transaction open. ``CREATE INDEX CONCURRENTLY``
    in the run that holds the lock waits for the end of every transaction that had a
    snapshot when it looked (a statement in progress has one), so a waiter whose
    transaction lasted from one try to the next would be waited for while it waits
    itself: a deadlock that only ``lock_timeout`` would break, failing the index.
    Gives up after ``bound`` seconds (:class:`LockWaitTimeout`).
    """

    def got() -> bool:
        conn.execute("BEGIN")
        if _got(conn, _TRY_XACT):
            return True
        conn.execute("ROLLBACK")
        return False

    return _poll(conn, on_event, got, bound)


@contextlib.contextmanager
def locked(
    conn: psycopg.Connection[Any],
    on_event: EventSink = ignore,
    *,
    rollback: bool = False,
    bound: float = DEFAULT_WAIT_FOR_LOCK,
) -> Iterator[float]:
    """A transaction holding the migration lock (see :func:`begin_locked`); yields the
    seconds waited. Committed at the end (rolled back with ``rollback``, or on error)."""
    waited = begin_locked(conn, on_event, bound)
    try:
        yield waited
    except BaseException:
        end_transaction(conn)
        raise
    conn.execute("ROLLBACK" if rollback else "COMMIT")


def lock_session(
    conn: psycopg.Connection[Any], on_event: EventSink, bound: float = DEFAULT_WAIT_FOR_LOCK
) -> float:
    """Take the session-level migration lock (autocommit: each try ends at once)."""
    return _poll(conn, on_event, lambda: _got(conn, _TRY_SESSION), bound)


def _poll(
    conn: psycopg.Connection[Any], on_event: EventSink, got: Callable[[], bool], bound: float
) -> float:
    """Try ``got`` until it takes the lock (every :data:`LOCK_POLL` seconds at most), for
    ``bound`` seconds at most; then :class:`LockWaitTimeout` names the holder.

    Polling, not blocking in ``pg_advisory_lock()``: a statement blocked there holds a
    snapshot for as long as it waits, which ``CREATE INDEX CONCURRENTLY`` in the run
    holding the lock would wait for (see :func:`begin_locked`). Who holds the lock is
    read between tries, when this session is in no transaction.
    """
    if got():
        return 0.0
    holders = blockers.advisory_holders(conn, ADVISORY_LOCK_KEY)
    on_event(Event("waiting", detail=advisory_wait_line(holders, bound)))
    started = time.monotonic()
    delay = 0.01
    while True:
        left = bound - (time.monotonic() - started)
        if left <= 0:
            holders = blockers.advisory_holders(conn, ADVISORY_LOCK_KEY) or holders
            raise LockWaitTimeout(advisory_gave_up(holders, bound))
        time.sleep(min(delay, left))
        if got():
            return time.monotonic() - started
        delay = min(delay * 2, LOCK_POLL)


def _got(conn: psycopg.Connection[Any], attempt: sql.Composed) -> bool:
    row = conn.execute(attempt).fetchone()
    return bool(row and row[0])


def check_session_lock(conn: psycopg.Connection[Any], migration: Migration) -> None:
    """Raise unless this statement's server session holds the session-level lock."""
    query = sql.SQL("SELECT EXISTS ({} AND pid = pg_backend_pid())").format(LOCK_HOLDERS)
    row = conn.execute(query).fetchone()
    if not (row and row[0]):
        raise MigrationFailed(
            f"{migration.filename}: runs without a transaction, under a session lock, but "
            "its statements reach another server session than the lock (a pooler in "
            "transaction mode?); apply it over a direct connection to PostgreSQL (the "
            "lock is freed when the session that took it ends)"
        )


def may_create_temporary(conn: psycopg.Connection[Any]) -> bool:
    """Whether this session may create temporary functions (the message helpers)."""
    sql_text = "SELECT has_database_privilege(current_database(), 'TEMPORARY')"
    row = conn.execute(sql_text).fetchone()
    return bool(row and row[0])


def end_transaction(conn: psycopg.Connection[Any]) -> None:
    """Roll back the transaction after a failure, if the connection still has one."""
    if conn.closed or conn.broken:
        return
    if conn.info.transaction_status in {TransactionStatus.INTRANS, TransactionStatus.INERROR}:
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")
