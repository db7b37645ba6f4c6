"""Applies pending migrations to a database: validate, lock, one transaction per file, record.

Guarantees (each has a test; see the README's "Guarantees"):

* The whole folder is validated and compared with ``schema_migrations`` before
  anything runs: a changed or missing applied file, or a pending file numbered
  below the highest applied one, stops the run with the database untouched.
* One run at a time, and never two runs inside one file: each file's transaction
  first takes the transaction-scoped advisory lock :data:`ADVISORY_LOCK_KEY`, then
  re-checks whether the file was applied meanwhile. Transaction-scoped locks work
  through a pooler in transaction mode (session locks do not).
* A file is all or nothing: it runs in its own transaction together with its
  ``schema_migrations`` row and checksum, so a failure leaves nothing of it.
  Several files' transactions travel in one message (one round trip for up to
  :data:`BATCH_FILES` small files); the server stops a message at its first error,
  so the files before the failing one stay committed and none after it runs. A file
  that does not parse on its own travels alone, so it cannot swallow the next one.
  Files whose first line is ``-- alumdb:no-transaction`` run statement by
  statement in autocommit under the session-level lock instead (over a direct
  connection: behind a pooler in transaction mode the run stops, saying why).
* A run that meets the lock polls for it, each try a transaction that ends at once,
  so a waiter never holds a transaction a ``CREATE INDEX CONCURRENTLY`` would wait for.
* Each file runs with ``lock_timeout``; a lock it cannot get is retried with
  exponential backoff a bounded number of times, so a migration never queues
  production traffic behind it for long.
* Every transaction but the run's last commits with ``synchronous_commit = off``
  (the last one flushes the WAL of all before it): a crash can lose only whole
  files, never part of one, and the next run re-applies them.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from alumdb import status as status_mod
from alumdb.catalog import Catalog, Migration, format_version
from alumdb.database import AUDIT_TABLE, TRACKING_TABLE, read_applied, tracking_columns
from alumdb.errors import CatalogError, DriftError, MigrationFailed, UsageError

# "alumdb" in ASCII. Operators find a running migration with
#   SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 24940 AND objid = 1970103394;
ADVISORY_LOCK_KEY = 0x616C756D6462
DEFAULT_LOCK_TIMEOUT = 5.0
DEFAULT_LOCK_RETRIES = 5
MAX_BACKOFF = 30.0
CONNECTION_CHECK_MS = 1000
LOCK_POLL = 0.1  # seconds between tries, at most, while another run holds the lock
# The sessions holding the lock (%s: its bigint key, which pg_locks splits in two).
LOCK_HOLDERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
    " AND ((classid::bigint << 32) | objid::bigint) = %s"
)
# Raised by the server when a file's own tracking insert names another version or name.
STRAY_SQLSTATE = "AL001"
# Raised by the server when a file's transaction finds the migration lock taken, or
# finds the file applied by another run once it holds the lock.
LOCK_BUSY_SQLSTATE = "AL002"
APPLIED_SQLSTATE = "AL003"
# The tracking table's oid, read from pg_class with the statement's snapshot (NULL when
# there is none yet), as the search path would find it. Not to_regclass(): it answers
# from the backend's catalog cache, which still says "no such table" after another run
# created it while this one waited for the lock (no relation lock was taken since, so
# the invalidation was not processed yet).
TRACKING_OID = (
    "SELECT c.oid FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    f" WHERE c.relname = '{TRACKING_TABLE}' AND n.nspname = ANY (current_schemas(false))"
    " ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1"
)

# The tracking columns this version of the runner needs, as 001_init.sql creates them.
# A database made by an older 001 (or by hand from the spec) gets the missing ones.
TRACKING_UPGRADE = f"""
ALTER TABLE {TRACKING_TABLE} ADD COLUMN IF NOT EXISTS checksum CHAR(64);
ALTER TABLE {TRACKING_TABLE} ADD COLUMN IF NOT EXISTS duration_ms INTEGER;
ALTER TABLE {TRACKING_TABLE} ADD COLUMN IF NOT EXISTS applied_by TEXT NOT NULL DEFAULT current_user;
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    version      VARCHAR(16) NOT NULL,
    event        TEXT NOT NULL,
    old_checksum CHAR(64),
    new_checksum CHAR(64),
    reason       TEXT,
    actor        TEXT NOT NULL DEFAULT current_user,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_schema_migrations_audit PRIMARY KEY (id),
    CONSTRAINT ck_schema_migrations_audit_event CHECK (event IN ('adopted', 'checksum_accepted'))
);
"""
TRACKING_NEEDS = {"checksum", "duration_ms", "applied_by"}

EventKind = Literal["waiting", "applying", "applied", "skipped", "adopted", "retrying", "upgraded"]


@dataclass(frozen=True)
class Event:
    """Progress the task layer renders as it happens."""

    kind: EventKind
    migration: Migration | None = None
    seconds: float = 0.0
    detail: str = ""


EventSink = Callable[[Event], None]


def _ignore(_: Event) -> None:
    return None


@dataclass(frozen=True)
class Options:
    target: str | None = None
    dry_run: bool = False
    allow_out_of_order: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    lock_retries: int = DEFAULT_LOCK_RETRIES


@dataclass
class Report:
    """What a run did (or, with ``dry_run``, would do)."""

    dry_run: bool
    planned: list[Migration] = field(default_factory=list)
    applied: list[tuple[Migration, float]] = field(default_factory=list)
    skipped: list[Migration] = field(default_factory=list)
    adopted: list[Migration] = field(default_factory=list)
    already_applied: int = 0
    waited: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class Plan:
    entries: list[status_mod.Entry]
    pending: list[Migration]
    adopt: list[Migration]


def target_number(catalog: Catalog, target: str | None) -> int | None:
    """The number ``--target`` names; :class:`UsageError` unless a file has that version."""
    if target is None:
        return None
    found = catalog.find(target.strip())
    if found is None:
        highest = format_version(catalog.highest) if len(catalog) else "none"
        raise UsageError(
            f"--target {target!r}: no migration with that version in {catalog.directory} "
            f"(versions run 001 to {highest}); pass an existing version"
        )
    return found.number


def make_plan(catalog: Catalog, entries: list[status_mod.Entry], options: Options) -> Plan:
    """What to apply and adopt; raises :class:`DriftError` when the disk and database disagree."""
    drift = status_mod.problems(entries)
    if drift:
        lines = [f"{e.filename or e.version + '_' + e.name}: {e.state} ({e.detail})" for e in drift]
        raise DriftError(
            "applied migrations differ from migrations/, nothing was run: "
            + "; ".join(lines)
            + ". Never edit or delete an applied migration: restore it and add a new one "
            "(or, for a harmless edit, `invoke accept-checksum VERSION --reason ...`)"
        )
    limit = target_number(catalog, options.target)
    by_number = {m.number: m for m in catalog}
    highest_applied = max((e.number for e in entries if e.state == "applied"), default=0)
    pending = [
        by_number[e.number]
        for e in entries
        if e.state == "pending" and (limit is None or e.number <= limit)
    ]
    early = [m for m in pending if m.number < highest_applied]
    if early and not options.allow_out_of_order:
        names = ", ".join(m.filename for m in early)
        raise DriftError(
            f"{names}: pending but numbered below the highest applied version "
            f"{format_version(highest_applied)}; renumber it after the latest migration, or "
            "pass --allow-out-of-order to apply it anyway"
        )
    adopt = [by_number[e.number] for e in entries if e.unverified]
    return Plan(entries=entries, pending=pending, adopt=adopt)


def read_status(conn: psycopg.Connection[Any], catalog: Catalog) -> list[status_mod.Entry]:
    return status_mod.compare(catalog, read_applied(conn))


def migrate(
    conn: psycopg.Connection[Any],
    catalog: Catalog,
    options: Options | None = None,
    on_event: EventSink = _ignore,
) -> Report:
    """Apply the pending migrations of ``catalog`` (up to ``options.target``)."""
    _require_autocommit(conn)
    if not len(catalog):
        raise CatalogError(
            [
                f"{catalog.directory}: no migration files (NNN_name.sql) in this folder; "
                "pass the right --migrations folder or add one with `invoke new-migration NAME`"
            ]
        )
    options = options or Options()
    started = time.monotonic()
    columns = tracking_columns(conn)
    entries = status_mod.compare(catalog, read_applied(conn, columns))
    plan = make_plan(catalog, entries, options)
    report = Report(dry_run=options.dry_run, planned=list(plan.pending))
    report.already_applied = sum(1 for e in entries if e.state == "applied")
    if options.dry_run:
        report.adopted = list(plan.adopt)
        report.seconds = time.monotonic() - started
        return report

    if columns and not columns >= TRACKING_NEEDS:
        with _locked(conn, on_event) as waited:
            report.waited += waited
            conn.execute(TRACKING_UPGRADE)
        on_event(Event("upgraded", detail=f"added {', '.join(sorted(TRACKING_NEEDS - columns))}"))
    if plan.adopt:
        _adopt(conn, plan.adopt, on_event, report)

    # Files that do not parse on their own travel alone: in a message, an unterminated
    # quote or comment at a file's end would swallow the files after it.
    alone = {m.version for m in plan.pending if m.transactional and not _parses(m)}
    helpers = bool(plan.pending) and _may_create_temporary(conn)
    attempts: dict[str, int] = {}  # lock timeouts met, by version
    position = 0
    while position < len(plan.pending):
        migration = plan.pending[position]
        if migration.transactional:
            position += _apply_batch(
                conn,
                _batch(plan.pending, position, alone),
                options=options,
                final=plan.pending[-1],
                helpers=helpers,
                attempts=attempts,
                on_event=on_event,
                report=report,
            )
            continue
        on_event(Event("applying", migration))
        seconds = _apply_without_transaction(conn, migration, options, on_event, report)
        if seconds is None:
            report.skipped.append(migration)
            on_event(Event("skipped", migration, detail="applied meanwhile by another run"))
        else:
            report.applied.append((migration, seconds))
            on_event(Event("applied", migration, seconds))
        position += 1
    report.seconds = time.monotonic() - started
    return report


# --- locking -----------------------------------------------------------------------


def _require_autocommit(conn: psycopg.Connection[Any]) -> None:
    """The runner opens and ends each transaction itself (``BEGIN`` ... ``COMMIT``)."""
    if not conn.autocommit:
        raise UsageError(
            "the runner needs an autocommit connection (it opens each file's transaction "
            "itself): connect with autocommit=True, as alumdb.database.connect does"
        )


def _may_create_temporary(conn: psycopg.Connection[Any]) -> bool:
    """Whether this session may create the temporary functions of :func:`_helpers`."""
    sql = "SELECT has_database_privilege(current_database(), 'TEMPORARY')"
    row = conn.execute(sql).fetchone()
    return bool(row and row[0])


def _begin_locked(conn: psycopg.Connection[Any], on_event: EventSink) -> float:
    """Open a transaction that holds the migration lock; return the seconds waited.

    Each try is a transaction of its own, rolled back at once when another run holds
    the lock: a run that waits keeps no transaction open. ``CREATE INDEX CONCURRENTLY``
    in the run that holds the lock waits for the end of every transaction that had a
    snapshot when it looked (a statement in progress has one), so a waiter whose
    transaction lasted from one try to the next would be waited for while it waits
    itself: a deadlock that only ``lock_timeout`` would break, failing the index.
    """
    attempt = f"SELECT pg_try_advisory_xact_lock({ADVISORY_LOCK_KEY})"

    def got() -> bool:
        conn.execute("BEGIN")
        if _got(conn, attempt):
            return True
        conn.execute("ROLLBACK")
        return False

    return _poll(conn, on_event, got)


@contextlib.contextmanager
def _locked(
    conn: psycopg.Connection[Any], on_event: EventSink = _ignore, *, rollback: bool = False
) -> Iterator[float]:
    """A transaction holding the migration lock (see :func:`_begin_locked`); yields the
    seconds waited. Committed at the end (rolled back with ``rollback``, or on error)."""
    waited = _begin_locked(conn, on_event)
    try:
        yield waited
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("ROLLBACK" if rollback else "COMMIT")


def _lock_session(conn: psycopg.Connection[Any], on_event: EventSink) -> float:
    """Take the session-level migration lock (autocommit: each try ends at once)."""
    attempt = f"SELECT pg_try_advisory_lock({ADVISORY_LOCK_KEY})"
    return _poll(conn, on_event, lambda: _got(conn, attempt))


def _poll(conn: psycopg.Connection[Any], on_event: EventSink, got: Callable[[], bool]) -> float:
    """Try ``got`` until it takes the lock (every :data:`LOCK_POLL` seconds at most).

    Polling, not blocking in ``pg_advisory_lock()``: a statement blocked there holds a
    snapshot for as long as it waits, which ``CREATE INDEX CONCURRENTLY`` in the run
    holding the lock would wait for (see :func:`_begin_locked`).
    """
    if got():
        return 0.0
    holder = conn.execute(f"{LOCK_HOLDERS} LIMIT 1", (ADVISORY_LOCK_KEY,)).fetchone()
    who = f"backend pid {holder[0]}" if holder else "another session"
    on_event(Event("waiting", detail=f"another migration run ({who}) holds the lock; waiting"))
    started = time.monotonic()
    delay = 0.01
    while True:
        time.sleep(delay)
        if got():
            return time.monotonic() - started
        delay = min(delay * 2, LOCK_POLL)


def _got(conn: psycopg.Connection[Any], attempt: str) -> bool:
    row = conn.execute(attempt).fetchone()
    return bool(row and row[0])


def _is_applied(conn: psycopg.Connection[Any], migration: Migration) -> bool:
    """Whether ``migration`` has a row by now (another run may have applied it)."""
    if conn.execute(TRACKING_OID).fetchone() is None:
        return False  # 001 creates the table; until then nothing is applied
    row = conn.execute(
        f"SELECT 1 FROM {TRACKING_TABLE} WHERE version = %s", (migration.version,)
    ).fetchone()
    return row is not None


def _adopt(
    conn: psycopg.Connection[Any], migrations: list[Migration], on_event: EventSink, report: Report
) -> None:
    """Record the checksums of files the compose loop applied (rows without one)."""
    with _locked(conn, on_event) as waited, conn.cursor() as cur:
        report.waited += waited
        for m in migrations:
            cur.execute(
                f"UPDATE {TRACKING_TABLE} SET checksum = %s WHERE version = %s"
                " AND checksum IS NULL",
                (m.checksum, m.version),
            )
            if cur.rowcount:
                cur.execute(
                    f"INSERT INTO {AUDIT_TABLE} (version, event, new_checksum, reason)"
                    " VALUES (%s, 'adopted', %s, %s)",
                    (m.version, m.checksum, "applied without a checksum; recorded the file's"),
                )
                report.adopted.append(m)
    if report.adopted:
        on_event(Event("adopted", detail=f"{len(report.adopted)} applied without a checksum"))


# --- applying ----------------------------------------------------------------------


def _record(conn: psycopg.Connection[Any], migration: Migration, seconds: float) -> None:
    """Record ``migration`` with its checksum and duration (a no-transaction file)."""
    conn.execute(
        f"INSERT INTO {TRACKING_TABLE} (version, name, checksum, duration_ms)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (version) DO UPDATE"
        " SET checksum = EXCLUDED.checksum, duration_ms = EXCLUDED.duration_ms",
        (migration.version, migration.name, migration.checksum, round(seconds * 1000)),
    )


# The batch a message carries: several files, each its own transaction, one round trip.
# Bounded so that one message stays small for the server's parser and progress shows
# often; a file larger than the byte bound goes alone.
BATCH_FILES = 100
BATCH_CHARS = 256 * 1024
# Each file's transaction announces itself with this notice when it starts, so the
# runner knows, live, which files of a message have committed (every one before it)
# and which file an error belongs to (the last one announced).
START_NOTICE = "alumdb: starting "


def _batch(pending: list[Migration], start: int, alone: set[str]) -> list[Migration]:
    """The consecutive transactional files from ``pending[start]`` one message carries.

    A file in ``alone`` (versions) gets a message of its own.
    """
    batch: list[Migration] = []
    size = 0
    for migration in pending[start:]:
        if not migration.transactional or len(batch) == BATCH_FILES:
            break
        if batch and (size + len(migration.sql) > BATCH_CHARS or migration.version in alone):
            break
        batch.append(migration)
        size += len(migration.sql)
        if migration.version in alone:
            break
    return batch


@dataclass
class _Message:
    """One message of file transactions: its text and where each file starts in it."""

    text: str
    starts: list[int]


def _message(
    batch: list[Migration],
    options: Options,
    final: Migration,
    *,
    opened: bool,
    helpers: bool,
) -> _Message:
    """``BEGIN``, opening, file, tracking row and ``COMMIT`` for each file of ``batch``.

    ``opened``: the first file's transaction is already open and holds the lock.
    ``helpers``: the session may create temporary functions (see :func:`_helpers`).
    """
    parts: list[str] = []
    starts: list[int] = []
    size = 0
    for index, migration in enumerate(batch):
        head = "" if opened and index == 0 else "BEGIN; "
        if index == 0 and helpers:
            head += _helpers()
        head += _opening(migration, options, last=migration is final, helpers=helpers)
        starts.append(size + len(head))
        piece = head + migration.sql + _closing(migration, helpers=helpers)
        parts.append(piece)
        size += len(piece)
    return _Message("".join(parts), starts)


# What runs around each file in its transaction, as PL/pgSQL: the bodies of the two
# functions :func:`_helpers` creates, or of a DO block per file where the session may
# not create temporary objects. Parameters: p_version, p_name, p_checksum.
#
# Opening: announce the file (:data:`START_NOTICE`); take the lock, raising
# :data:`LOCK_BUSY_SQLSTATE` when another run holds it (so nothing after it runs and no
# table lock is held while waiting: waiting with one would deadlock against the run
# holding the lock); re-check, with a snapshot taken after the lock is held, that the
# file is not applied (:data:`APPLIED_SQLSTATE`); note the start time and how many
# tracking rows the transaction has written so far, for the closing. The tracking
# table is found with ``to_regclass()`` and, while that says "no such table", in
# ``pg_class``: the catalog cache behind ``to_regclass()`` can still miss the table
# after another run created it while this one waited for the lock.
_OPENING_DECLARE = "rel oid := to_regclass('" + TRACKING_TABLE + "');"
_OPENING_BODY = f"""
RAISE NOTICE '{START_NOTICE}%', p_version;
IF NOT pg_try_advisory_xact_lock({ADVISORY_LOCK_KEY}) THEN
  RAISE SQLSTATE '{LOCK_BUSY_SQLSTATE}';
END IF;
IF rel IS NULL THEN
  {TRACKING_OID} INTO rel;
END IF;
IF rel IS NOT NULL THEN
  IF EXISTS (SELECT FROM {TRACKING_TABLE} WHERE version = p_version) THEN
    RAISE SQLSTATE '{APPLIED_SQLSTATE}';
  END IF;
END IF;
PERFORM set_config('alumdb.started', extract(epoch FROM clock_timestamp())::text, true);
PERFORM set_config('alumdb.writes', coalesce(pg_stat_get_xact_tuples_inserted(rel)
  + pg_stat_get_xact_tuples_updated(rel) + pg_stat_get_xact_tuples_deleted(rel), 0)::text, true);
"""
# Closing: refuse rows the file's own tracking insert wrote for another version or
# name (the compose loop would keep them, so the two paths would disagree), then record
# the file with its checksum and the server's duration. The cheap test first: the
# transaction's write counters say the file wrote exactly its own row (or none). Only
# otherwise are the rows this transaction wrote (``xmin``) searched, which costs a scan
# of the table; a stray one raises :data:`STRAY_SQLSTATE` and the COMMIT never runs.
_CLOSING_DECLARE = (
    "rel oid := to_regclass('" + TRACKING_TABLE + "'); writes bigint; own text; stray record;"
)
_CLOSING_BODY = f"""
writes := pg_stat_get_xact_tuples_inserted(rel) + pg_stat_get_xact_tuples_updated(rel)
  + pg_stat_get_xact_tuples_deleted(rel) - current_setting('alumdb.writes')::bigint;
SELECT name INTO own FROM {TRACKING_TABLE} WHERE version = p_version;
IF ((own IS NULL AND writes = 0) OR (own IS NOT DISTINCT FROM p_name AND writes = 1))
    IS NOT TRUE THEN
  SELECT version::text AS version, name::text AS name INTO stray FROM {TRACKING_TABLE}
   WHERE xmin = pg_current_xact_id()::xid AND (version, name) <> (p_version, p_name) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '{STRAY_SQLSTATE}', MESSAGE = 'stray tracking row',
      DETAIL = stray.version, HINT = stray.name;
  END IF;
END IF;
INSERT INTO {TRACKING_TABLE} (version, name, checksum, duration_ms)
VALUES (p_version, p_name, p_checksum, round(1000 * (extract(epoch FROM clock_timestamp())
  - current_setting('alumdb.started')::numeric))::int)
ON CONFLICT (version) DO UPDATE
SET checksum = EXCLUDED.checksum, duration_ms = EXCLUDED.duration_ms;
"""


def _helpers() -> str:
    """``pg_temp.alumdb_open`` and ``pg_temp.alumdb_close``, created at each message's start.

    A function's PL/pgSQL is compiled and its queries planned once per session, where a
    DO block is compiled and planned again every time: per file, about 0.7 ms less of
    the server's time. Temporary, so nothing is left in the database's schemas; created
    again in every message, because behind a pooler in transaction mode each message
    may meet another server session (a message is one round trip, so one session).
    """
    return "".join(
        f"CREATE OR REPLACE FUNCTION pg_temp.{name}({params}) RETURNS void"
        f" LANGUAGE plpgsql AS $alumdb$ DECLARE {declare} BEGIN {body} END $alumdb$; "
        for name, params, declare, body in (
            ("alumdb_open", "p_version text", _OPENING_DECLARE, _OPENING_BODY),
            (
                "alumdb_close",
                "p_version text, p_name text, p_checksum text",
                _CLOSING_DECLARE,
                _CLOSING_BODY,
            ),
        )
    )


def _opening(migration: Migration, options: Options, *, last: bool, helpers: bool) -> str:
    """What runs in the file's transaction before the file, in the same message.

    ``client_connection_check_interval``: if this process dies mid-file, the server
    sees the closed socket within a second, rolls the file back and frees the lock,
    instead of finishing a long statement first.
    """
    version = _literal(migration.version)
    if helpers:
        check = f"SELECT pg_temp.alumdb_open({version});"
    else:
        declare = f"p_version text := {version}; {_OPENING_DECLARE}"
        check = f"DO $alumdb$ DECLARE {declare} BEGIN {_OPENING_BODY} END $alumdb$;"
    return (
        f"SET LOCAL client_min_messages = notice; {check}"
        f" SET LOCAL lock_timeout = {max(1, round(options.lock_timeout * 1000))};"
        f" SET LOCAL synchronous_commit = {'on' if last else 'off'};"
        f" SET LOCAL client_connection_check_interval = {CONNECTION_CHECK_MS}; "
    )


def _closing(migration: Migration, *, helpers: bool) -> str:
    """After the file: refuse stray tracking rows, record the file, COMMIT."""
    version, name, checksum = (
        _literal(value) for value in (migration.version, migration.name, migration.checksum)
    )
    if helpers:
        check = f"SELECT pg_temp.alumdb_close({version}, {name}, {checksum});"
    else:
        declare = (
            f"p_version text := {version}; p_name text := {name};"
            f" p_checksum text := {checksum}; {_CLOSING_DECLARE}"
        )
        check = f"DO $alumdb$ DECLARE {declare} BEGIN {_CLOSING_BODY} END $alumdb$;"
    return f"\n; {check} COMMIT; "


def _literal(value: str) -> str:
    """``value`` as a standard-conforming SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


class _Progress:
    """Turns the start notices of a message into live ``applied`` events."""

    def __init__(self, batch: list[Migration], on_event: EventSink, report: Report) -> None:
        self.batch = batch
        self.on_event = on_event
        self.report = report
        self.started: list[float] = []  # monotonic time each file of the batch started
        self.reported = 0  # files of the batch reported applied

    def notice(self, diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        if not message.startswith(START_NOTICE) or len(self.started) == len(self.batch):
            return
        if message[len(START_NOTICE) :] != self.batch[len(self.started)].version:
            return
        now = time.monotonic()
        if self.started:  # the file before this one has committed
            self.applied(len(self.started) - 1, now)
        self.started.append(now)
        self.on_event(Event("applying", self.batch[len(self.started) - 1]))

    def applied(self, index: int, now: float) -> None:
        migration = self.batch[index]
        seconds = now - self.started[index]
        self.reported = index + 1
        self.report.applied.append((migration, seconds))
        self.on_event(Event("applied", migration, seconds))

    def finish(self, now: float) -> None:
        """The message ran to its end: every file of it has committed."""
        if len(self.started) < len(self.batch):  # notices lost on the way: no timings
            self.started += [now] * (len(self.batch) - len(self.started))
        for index in range(self.reported, len(self.batch)):
            self.applied(index, now)

    @property
    def current(self) -> int | None:
        """The file the message was running (the last announced), if any."""
        return len(self.started) - 1 if self.started else None


def _apply_batch(
    conn: psycopg.Connection[Any],
    batch: list[Migration],
    *,
    options: Options,
    final: Migration,
    helpers: bool,
    attempts: dict[str, int],
    on_event: EventSink,
    report: Report,
) -> int:
    """Apply ``batch``, one transaction per file, several per message; return how many
    files are settled (applied, or applied meanwhile by another run).

    Every file before the one a message stops at has committed. Fewer than
    ``len(batch)`` settled means: retry from the first unsettled file (after a lock
    timeout, with backoff). A failing file raises :class:`MigrationFailed`.
    """
    settled = 0
    opened = False
    while settled < len(batch):
        todo = batch[settled:]
        message = _message(todo, options, final, opened=opened, helpers=helpers)
        progress = _Progress(todo, on_event, report)
        conn.add_notice_handler(progress.notice)
        try:
            conn.execute(message.text.encode())
        except psycopg.Error as exc:
            error: psycopg.Error | None = exc
        except BaseException:  # Ctrl-C: psycopg has cancelled the statement
            _rollback(conn)
            raise
        else:
            error = None
        finally:
            conn.remove_notice_handler(progress.notice)
        if error is None:
            progress.finish(time.monotonic())
            return len(batch)
        _rollback(conn)
        index = progress.current
        if index is None and len(todo) > 1:
            # Nothing ran: the server refused the whole message (it parses it all before
            # running any of it). Apply the files before the one the error points at (or
            # the first alone), and the culprit in a message of its own.
            one = _apply_batch(
                conn,
                todo[: _culprit(message, error) or 1],
                options=options,
                final=final,
                helpers=helpers,
                attempts=attempts,
                on_event=on_event,
                report=report,
            )
            return settled + one
        index = index or 0
        settled += index
        step = _settle(
            conn,
            todo[index],
            error,
            offset=message.starts[index],
            options=options,
            attempts=attempts,
            on_event=on_event,
            report=report,
        )
        if step is None:
            return settled  # retried from this file by the caller
        settled += step
        opened = step == 0
        if opened:  # after a wait: skip what the run it waited for has applied
            try:
                settled += _skip_applied(conn, batch[settled:], on_event, report)
                if settled == len(batch):
                    conn.execute("ROLLBACK")
            except psycopg.Error as exc:
                _rollback(conn)
                raise _failure(conn, batch[min(settled, len(batch) - 1)], exc) from None
    return settled


def _skip_applied(
    conn: psycopg.Connection[Any], todo: list[Migration], on_event: EventSink, report: Report
) -> int:
    """How many files at the head of ``todo`` are applied by now; each reported skipped.

    Runs in the transaction that holds the lock after a wait, so a run that waited
    behind another goes straight to the first file still pending, instead of meeting
    each applied one (and the lock) again.
    """
    if conn.execute(TRACKING_OID).fetchone() is None:
        return 0
    applied = {
        str(row[0])
        for row in conn.execute(
            f"SELECT version::text FROM {TRACKING_TABLE} WHERE version = ANY (%s)",
            ([m.version for m in todo],),
        )
    }
    count = 0
    for migration in todo:
        if migration.version not in applied:
            break
        report.skipped.append(migration)
        on_event(Event("skipped", migration, detail="applied meanwhile by another run"))
        count += 1
    return count


def _culprit(message: _Message, error: psycopg.Error) -> int:
    """The index of the file of ``message`` that ``error``'s position points into (or 0)."""
    position = error.diag.statement_position
    if not position:
        return 0
    return max(0, bisect.bisect_right(message.starts, int(position) - 1) - 1)


def _settle(
    conn: psycopg.Connection[Any],
    migration: Migration,
    error: psycopg.Error,
    *,
    offset: int,
    options: Options,
    attempts: dict[str, int],
    on_event: EventSink,
    report: Report,
) -> int | None:
    """What to do about the file a message stopped at, after the rollback.

    1: it was applied meanwhile by another run (skipped). 0: another run held the
    lock; this waited for it in a new transaction, open now, where the file goes on.
    ``None``: a lock timeout; retry the file after the backoff. Otherwise raises.
    """
    if error.sqlstate == APPLIED_SQLSTATE:
        report.skipped.append(migration)
        on_event(Event("skipped", migration, detail="applied meanwhile by another run"))
        return 1
    if error.sqlstate == LOCK_BUSY_SQLSTATE:
        # Wait for the lock holding no table lock, and without the file's lock_timeout.
        try:
            report.waited += _begin_locked(conn, on_event)
        except psycopg.Error as exc:
            _rollback(conn)
            raise _failure(conn, migration, exc) from None
        except BaseException:
            _rollback(conn)
            raise
        return 0
    if isinstance(error, pg_errors.LockNotAvailable):
        _back_off(migration, error, options, attempts, on_event)
        return None
    if error.sqlstate == STRAY_SQLSTATE:
        raise MigrationFailed(
            f"{migration.filename}: the tracking insert records version "
            f"{error.diag.message_detail!r}, name {error.diag.message_hint!r}, not "
            f"{migration.version!r}, {migration.name!r}; make the INSERT INTO "
            "schema_migrations at its end match the file name (rolled back: nothing of "
            "this file was applied)"
        )
    raise _failure(conn, migration, error, offset=offset)


def _back_off(
    migration: Migration,
    error: psycopg.Error,
    options: Options,
    attempts: dict[str, int],
    on_event: EventSink,
) -> None:
    """Sleep before retrying a file that hit its lock_timeout; fail after the last retry."""
    attempt = attempts[migration.version] = attempts.get(migration.version, 0) + 1
    if attempt > options.lock_retries:
        raise MigrationFailed(
            f"{migration.filename}: could not get a lock within "
            f"{options.lock_timeout:g}s, {attempt} attempts ({_pg_message(error)}); "
            "another session holds a lock on what the file alters: retry when it is "
            "quieter or raise --lock-timeout"
        )
    delay = min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1))
    on_event(
        Event(
            "retrying",
            migration,
            detail=f"lock not available (attempt {attempt}/{options.lock_retries}); "
            f"retrying in {delay:g}s",
        )
    )
    time.sleep(delay)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End the file's transaction after a failure, if the connection still has one."""
    if conn.closed or conn.broken:
        return
    if conn.info.transaction_status in {TransactionStatus.INTRANS, TransactionStatus.INERROR}:
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")


def _apply_without_transaction(
    conn: psycopg.Connection[Any],
    migration: Migration,
    options: Options,
    on_event: EventSink,
    report: Report,
) -> float | None:
    """Apply a ``-- alumdb:no-transaction`` file statement by statement under the session lock.

    A session lock needs one server session throughout: behind a pooler in transaction
    mode the statements could run in other sessions than the lock, and the unlock too,
    leaving the lock held. So the runner checks, before the file and after it, that
    its statements run in the session holding the lock, and stops with a clear error
    when they do not.
    """
    import pglast

    report.waited += _lock_session(conn, on_event)
    try:
        _check_session_lock(conn, migration)
        if _is_applied(conn, migration):
            return None
        conn.execute(
            f"SET lock_timeout = {max(1, round(options.lock_timeout * 1000))};"
            f" SET client_connection_check_interval = {CONNECTION_CHECK_MS}"
        )
        started = time.monotonic()
        for piece in pglast.split(migration.sql, with_parser=True, only_slices=True):
            try:
                conn.execute(migration.sql[piece].encode("utf-8"))
            except psycopg.Error as exc:
                line, col = _line_col(migration.sql, piece.start)
                raise MigrationFailed(
                    f"{migration.filename}:{line}:{col}: {_pg_message(exc)}"
                    " (the file runs without a transaction: statements before this one stay "
                    "applied; it must be safe to run again)"
                ) from None
        seconds = time.monotonic() - started
        _check_session_lock(conn, migration)
        _record(conn, migration, seconds)
        return seconds
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("RESET lock_timeout; RESET client_connection_check_interval")
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def _check_session_lock(conn: psycopg.Connection[Any], migration: Migration) -> None:
    """Raise unless this statement's server session holds the session-level lock."""
    row = conn.execute(
        f"SELECT EXISTS ({LOCK_HOLDERS} AND pid = pg_backend_pid())", (ADVISORY_LOCK_KEY,)
    ).fetchone()
    if not (row and row[0]):
        raise MigrationFailed(
            f"{migration.filename}: runs without a transaction, under a session lock, but "
            "its statements reach another server session than the lock (a pooler in "
            "transaction mode?); apply it over a direct connection to PostgreSQL (the "
            "lock is freed when the session that took it ends)"
        )


def _parses(migration: Migration) -> bool:
    """Whether ``migration`` parses on its own; refuse transaction control in it.

    BEGIN/COMMIT/ROLLBACK would end the runner's transaction, so a file holding one is
    refused before anything runs. Read with PostgreSQL's parser (its JSON output:
    twenty times faster than pglast's Python tree, and only the statements' kinds are
    needed). A file that does not parse is left to the server, which reports the
    error with its position.
    """
    from pglast import parser

    try:
        tree = json.loads(parser.parse_sql_json(migration.sql))
    except parser.ParseError:
        return False
    for raw in tree.get("stmts", []):
        if "TransactionStmt" in raw.get("stmt", {}):
            location = raw.get("stmt_location", 0)  # in bytes of the UTF-8 text
            offset = len(migration.sql.encode()[:location].decode("utf-8", "replace"))
            line, col = _line_col(migration.sql, offset)
            raise MigrationFailed(
                f"{migration.filename}:{line}:{col}: transaction control statement in a "
                "migration; remove it (each file already runs in its own transaction) or make "
                "the file's first line `-- alumdb:no-transaction`"
            )
    return True


# --- errors ------------------------------------------------------------------------


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def _pg_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    parts = [message]
    if diag.message_detail:
        parts.append(f"DETAIL: {diag.message_detail}")
    if diag.message_hint:
        parts.append(f"HINT: {diag.message_hint}")
    if exc.sqlstate:
        parts.append(f"SQLSTATE {exc.sqlstate}")
    return "; ".join(parts)


def _failure(
    conn: psycopg.Connection[Any], migration: Migration, exc: psycopg.Error, offset: int = 0
) -> MigrationFailed:
    """A :class:`MigrationFailed` naming the file, line and column of ``exc``.

    ``offset``: the characters sent before the file in the same message.
    """
    if isinstance(exc, psycopg.OperationalError) and (conn.broken or conn.closed):
        return MigrationFailed(
            f"{migration.filename}: lost the connection to the database while applying it "
            f"({_pg_message(exc)}); the file's transaction did not commit: run migrate again "
            "once the database is back"
        )
    where = _locate(conn, migration, exc, offset)
    prefix = f"{migration.filename}:{where[0]}:{where[1]}" if where else migration.filename
    return MigrationFailed(
        f"{prefix}: {_pg_message(exc)} (rolled back: nothing of this file was applied)"
    )


def _locate(
    conn: psycopg.Connection[Any], migration: Migration, exc: psycopg.Error, offset: int = 0
) -> tuple[int, int] | None:
    """Where in the file ``exc`` happened.

    PostgreSQL gives a position for syntax and many semantic errors; for the rest
    (an object that already exists, an error inside a DO block) the file is replayed
    statement by statement in a transaction that is always rolled back, to find the
    statement that fails and, inside a DO block, the line its context names.
    """
    position = exc.diag.statement_position
    if position and 0 <= int(position) - 1 - offset < len(migration.sql):
        return _line_col(migration.sql, int(position) - 1 - offset)
    if conn.broken or conn.closed:
        return None
    import pglast

    try:
        pieces = list(pglast.split(migration.sql, with_parser=True, only_slices=True))
    except pglast.parser.ParseError:
        return None
    try:
        with _locked(conn, rollback=True):
            for piece in pieces:
                try:
                    conn.execute(migration.sql[piece].encode("utf-8"))
                except psycopg.Error as replay:
                    return _within(migration.sql, piece, replay)
    except psycopg.Error:
        return None
    return None


def _within(text: str, piece: slice, exc: psycopg.Error) -> tuple[int, int]:
    """The position of ``exc`` inside the statement ``text[piece]``."""
    statement = text[piece]
    position = exc.diag.statement_position
    if position:
        return _line_col(text, piece.start + int(position) - 1)
    context = exc.diag.context or ""
    body_line = re.search(r"inline_code_block line (\d+)", context)
    opening = re.search(r"\$[A-Za-z_0-9]*\$", statement)
    if body_line and opening:
        line, _ = _line_col(text, piece.start + opening.start())
        return line + int(body_line.group(1)) - 1, 1
    return _line_col(text, piece.start)


# --- accepting a changed checksum ----------------------------------------------------


def accept_checksum(
    conn: psycopg.Connection[Any], catalog: Catalog, version: str, reason: str
) -> tuple[str | None, str]:
    """Record the current checksum of an applied, changed file; logged with ``reason``.

    Returns ``(old, new)``. Refuses an empty reason and a version that is not changed.
    """
    _require_autocommit(conn)
    if not reason.strip():
        raise UsageError("--reason is required: say why the changed file is acceptable")
    migration = catalog.find(version)
    if migration is None:
        raise UsageError(f"VERSION {version!r}: no migration with that version on disk")
    entries = {e.number: e for e in read_status(conn, catalog)}
    entry = entries.get(migration.number)
    if entry is None or entry.state != "changed" or entry.recorded_checksum == migration.checksum:
        state = entry.state if entry else "unknown"
        raise UsageError(
            f"{migration.filename}: is {state}, not changed; there is no checksum to accept"
        )
    with _locked(conn):
        if not tracking_columns(conn) >= TRACKING_NEEDS:
            conn.execute(TRACKING_UPGRADE)
        conn.execute(
            f"UPDATE {TRACKING_TABLE} SET checksum = %s, name = %s WHERE version = %s",
            (migration.checksum, migration.name, migration.version),
        )
        conn.execute(
            f"INSERT INTO {AUDIT_TABLE} (version, event, old_checksum, new_checksum, reason)"
            " VALUES (%s, 'checksum_accepted', %s, %s, %s)",
            (migration.version, entry.recorded_checksum, migration.checksum, reason.strip()),
        )
    return entry.recorded_checksum, migration.checksum
