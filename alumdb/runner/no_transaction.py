"""``-- alumdb:no-transaction`` files: statement by statement, in autocommit, under the
session lock (for ``CREATE INDEX CONCURRENTLY``).

The difference from an ordinary file is here alone: no transaction to roll back, so
a failure leaves the statements before it applied, and a failed
``CREATE INDEX CONCURRENTLY`` leaves an INVALID index that a re-run's ``IF NOT EXISTS``
would skip: the indexes the file names are checked after it, before it is recorded.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from alumdb import blockers, retry
from alumdb.catalog import Migration
from alumdb.errors import MigrationFailed
from alumdb.runner import preflight
from alumdb.runner.events import Event
from alumdb.runner.locate import line_col, pg_message, statement_start, statements, within
from alumdb.runner.locking import UNLOCK_SESSION, check_session_lock, lock_session
from alumdb.runner.message import (
    CONNECTION_CHECK_MS,
    DISCARD_TEMP,
    FRESH_SESSION,
    file_application_name,
    may_create_temporary_objects,
)
from alumdb.runner.watch import watching

if TYPE_CHECKING:  # avoids an import cycle
    from alumdb.runner.apply import Run

NOT_ATOMIC = (
    "the file runs without a transaction: statements before this one stay applied; "
    "it must be safe to run again"
)
INVALID_INDEXES = """
SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND c.relname = %(name)s::text
  AND (n.nspname = %(schema)s::text OR (%(schema)s::text IS NULL AND n.nspname = current_schema()))
"""


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
        recorded = run.tracking.applied_among(conn, [migration.version])
        if recorded:
            run.skip(migration, recorded[migration.version])
            return None
        # FRESH_SESSION (RESET ALL) after the statements gives the session its name back.
        conn.execute(
            sql.SQL("SET application_name = {}; SET client_connection_check_interval = {}").format(
                sql.Literal(file_application_name(migration)), sql.Literal(CONNECTION_CHECK_MS)
            )
        )
        started = time.monotonic()
        _run_statements(run, migration)
        seconds = time.monotonic() - started
        _refuse_invalid_indexes(conn, migration)
        check_session_lock(conn, migration)
        run.tracking.record(conn, migration, seconds)
        return seconds
    finally:
        if not conn.closed and not conn.broken:
            with contextlib.suppress(psycopg.Error):
                conn.execute(UNLOCK_SESSION)


def _run_statements(run: Run, migration: Migration) -> None:
    """The file's statements one by one, the server's notices as events; then the
    session is made fresh again (see :data:`alumdb.runner.message.FRESH_SESSION`)."""
    conn = run.conn
    run.current = migration
    conn.add_notice_handler(run.server_said)
    try:
        indexes = preflight.concurrent_indexes(migration)
        for number, piece in enumerate(statements(migration.sql)):
            try:
                _execute(run, migration, piece)
            except psycopg.Error as exc:
                raise _failed(conn, migration, piece, exc) from None
            except KeyboardInterrupt:
                raise run.interrupted() from None
            if number in indexes:  # before the file's own tracking insert can run
                _refuse_invalid_indexes(conn, migration, [indexes[number]])
    finally:
        conn.remove_notice_handler(run.server_said)
        run.current = None
        if not conn.closed and not conn.broken:
            fresh = FRESH_SESSION
            if may_create_temporary_objects(migration):
                fresh += DISCARD_TEMP
            with contextlib.suppress(psycopg.Error):
                conn.execute(fresh)


def _failed(
    conn: psycopg.Connection[Any], migration: Migration, piece: slice, exc: psycopg.Error
) -> MigrationFailed:
    line, col = within(migration.sql, piece, exc)
    where = f"{migration.filename}:{line}:{col}"
    if conn.closed or conn.broken:
        return MigrationFailed(
            f"{where}: lost the connection to the database ({pg_message(exc)}); {NOT_ATOMIC}"
        )
    invalid: list[str] = []
    with contextlib.suppress(psycopg.Error):  # only a hint on top of the error
        invalid = _invalid_indexes(conn, migration)
    drop = (
        f"; it left {', '.join(invalid)} INVALID: drop it with DROP INDEX CONCURRENTLY "
        "IF EXISTS before running migrate again"
        if invalid
        else ""
    )
    return MigrationFailed(f"{where}: {pg_message(exc)} ({NOT_ATOMIC}{drop})")


def _invalid_indexes(
    conn: psycopg.Connection[Any],
    migration: Migration,
    names: list[tuple[str | None, str]] | None = None,
) -> list[str]:
    """The INVALID indexes among ``names`` (default: all the file creates CONCURRENTLY)."""
    found: list[str] = []
    if names is None:
        names = list(preflight.concurrent_indexes(migration).values())
    for schema, name in names:
        rows = conn.execute(INVALID_INDEXES, {"schema": schema, "name": name}).fetchall()
        found += [str(row[0]) for row in rows]
    return found


def _refuse_invalid_indexes(
    conn: psycopg.Connection[Any],
    migration: Migration,
    names: list[tuple[str | None, str]] | None = None,
) -> None:
    """Fail, recording nothing, when an index the file names is INVALID.

    A ``CREATE INDEX CONCURRENTLY`` that failed (a lock timeout, a deadlock, a unique
    violation) leaves its index INVALID: never used by queries, yet there, so the
    next run's ``IF NOT EXISTS`` skips it and the file would be recorded as applied.
    """
    invalid = _invalid_indexes(conn, migration, names)
    if invalid:
        raise MigrationFailed(
            f"{migration.filename}: index {', '.join(invalid)} is INVALID (a "
            "CREATE INDEX CONCURRENTLY that failed left it; IF NOT EXISTS skips it, so it "
            "was not rebuilt): drop it with DROP INDEX CONCURRENTLY IF EXISTS, then run "
            "migrate again; the file is not recorded"
        )


def _execute(run: Run, migration: Migration, piece: slice) -> None:
    """Run one statement of the file, retried after a lock timeout as a transactional
    file is (same budget, same lines naming the blocker).

    A statement that queues the application's reads or writes while it waits for its
    table lock waits ``--lock-timeout`` at most; the ``CONCURRENTLY`` forms queue
    nobody, and a ``CREATE INDEX CONCURRENTLY`` that fails leaves an INVALID index
    behind, so they may wait the whole ``--lock-budget`` once instead.
    """
    conn = run.conn
    start = statement_start(migration.sql, piece)
    text = migration.sql[start : piece.stop]
    short = blockers.queues_traffic(text)
    wait = run.framing.lock_timeout if short else run.retry.policy.budget
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(retry.milliseconds(wait))))
    while True:
        try:
            with watching(conn, lambda: migration, run.on_event):
                conn.execute(migration.sql[piece].encode("utf-8"))
            return
        except pg_errors.LockNotAvailable:
            # Autocommit: the statement is over, this session waits for nothing.
            line, col = line_col(migration.sql, start)
            step = run.retry.after_timeout(
                conn, migration, text, where=f":{line}:{col}", transactional=False,
                final=not short,
            )  # fmt: skip
            run.on_event(Event("retrying", migration, detail=step.detail))
            time.sleep(step.delay)
