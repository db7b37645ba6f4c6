"""``-- alumdb:no-transaction`` files: statement by statement, in autocommit, under the
session lock (for ``CREATE INDEX CONCURRENTLY``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from alumdb.catalog import Migration
from alumdb.errors import MigrationFailed
from alumdb.runner.locate import line_col, pg_message, statement_start
from alumdb.runner.locking import UNLOCK_SESSION, check_session_lock, lock_session
from alumdb.runner.message import (
    CONNECTION_CHECK_MS,
    DISCARD_TEMP,
    FRESH_SESSION,
    may_create_temporary_objects,
)

if TYPE_CHECKING:  # avoids an import cycle
    from alumdb.runner.apply import Run


def apply(run: Run, migration: Migration) -> float | None:
    """Apply ``migration``; the seconds it took, or ``None`` when another run applied it.

    A session lock needs one server session throughout: behind a pooler in transaction
    mode the statements could run in other sessions than the lock, and the unlock too,
    leaving the lock held. So the runner checks, before the file and after it, that
    its statements run in the session holding the lock, and stops with a clear error
    when they do not.
    """
    conn = run.conn
    run.report.waited += lock_session(conn, run.on_event)
    try:
        check_session_lock(conn, migration)
        if run.tracking.applied_among(conn, [migration.version]):
            return None
        conn.execute(
            sql.SQL("SET lock_timeout = {}; SET client_connection_check_interval = {}").format(
                sql.Literal(run.framing.lock_timeout_ms), sql.Literal(CONNECTION_CHECK_MS)
            )
        )
        started = time.monotonic()
        try:
            _statements(conn, migration)
        finally:
            fresh_session(conn, migration)
        seconds = time.monotonic() - started
        check_session_lock(conn, migration)
        run.tracking.record(conn, migration, seconds)
        return seconds
    finally:
        if not conn.closed and not conn.broken:
            conn.execute(UNLOCK_SESSION)


def fresh_session(conn: psycopg.Connection[Any], migration: Migration) -> None:
    """Undo what the file did to its session, as for a transactional file."""
    if conn.closed or conn.broken:
        return
    fresh = FRESH_SESSION + (DISCARD_TEMP if may_create_temporary_objects(migration) else "")
    conn.execute(fresh)


def _statements(conn: psycopg.Connection[Any], migration: Migration) -> None:
    import pglast

    for piece in pglast.split(migration.sql, with_parser=True, only_slices=True):
        try:
            conn.execute(migration.sql[piece].encode("utf-8"))
        except psycopg.Error as exc:
            line, col = line_col(migration.sql, statement_start(migration.sql, piece))
            raise MigrationFailed(
                f"{migration.filename}:{line}:{col}: {pg_message(exc)}"
                " (the file runs without a transaction: statements before this one stay "
                "applied; it must be safe to run again)"
            ) from None
