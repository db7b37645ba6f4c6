"""``-- alumdb:no-transaction`` files: statement by statement, in autocommit, under the
session lock (for ``CREATE INDEX CONCURRENTLY``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from alumdb import blockers, retry
from alumdb.catalog import Migration
from alumdb.errors import MigrationFailed
from alumdb.runner.events import Event
from alumdb.runner.locate import line_col, pg_message, statement_start
from alumdb.runner.locking import UNLOCK_SESSION, check_session_lock, lock_session
from alumdb.runner.message import (
    CONNECTION_CHECK_MS,
    DISCARD_TEMP,
    FRESH_SESSION,
    file_application_name,
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
    run.report.waited += lock_session(conn, run.on_event, run.retry.wait_for_lock)
    try:
        check_session_lock(conn, migration)
        if run.tracking.applied_among(conn, [migration.version]):
            return None
        # RESET ALL in fresh_session() gives the session its own name back.
        conn.execute(
            sql.SQL("SET application_name = {}; SET client_connection_check_interval = {}").format(
                sql.Literal(file_application_name(migration)), sql.Literal(CONNECTION_CHECK_MS)
            )
        )
        started = time.monotonic()
        try:
            _statements(run, migration)
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


def _statements(run: Run, migration: Migration) -> None:
    """Each statement in turn, each retried after a lock timeout as a transactional file
    is (same budget, same lines naming the blocker).

    A statement that queues the application's reads or writes while it waits for its
    table lock waits :data:`lock_timeout` at most; the ``CONCURRENTLY`` forms queue
    nobody, and a ``CREATE INDEX CONCURRENTLY`` that fails leaves an INVALID index
    behind, so they may wait the whole ``--lock-budget`` once instead.
    """
    import pglast

    conn = run.conn
    for piece in pglast.split(migration.sql, with_parser=True, only_slices=True):
        start = statement_start(migration.sql, piece)
        line, col = line_col(migration.sql, start)
        text = migration.sql[start : piece.stop]
        short = blockers.queues_traffic(text)
        wait = run.framing.lock_timeout if short else run.retry.policy.budget
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(retry.milliseconds(wait))))
        while True:
            try:
                conn.execute(migration.sql[piece].encode("utf-8"))
                break
            except pg_errors.LockNotAvailable:
                # Autocommit: the statement is over, this session waits for nothing.
                step = run.retry.after_timeout(
                    conn, migration, text, where=f":{line}:{col}", transactional=False,
                    final=not short,
                )  # fmt: skip
                run.on_event(Event("retrying", migration, detail=step.detail))
                time.sleep(step.delay)
            except psycopg.Error as exc:
                raise MigrationFailed(
                    f"{migration.filename}:{line}:{col}: {pg_message(exc)}"
                    " (the file runs without a transaction: statements before this one stay "
                    "applied; it must be safe to run again)"
                ) from None
