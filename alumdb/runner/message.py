"""Building the messages that carry files to the server (pure: no database needed).

A message holds several files, each its own transaction: ``BEGIN``, the opening
(lock, applied-meanwhile check, settings), the file, the closing (stray tracking
rows refused, the file recorded), ``COMMIT``. One round trip for up to
:data:`BATCH_FILES` small files.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

from psycopg import sql

from alumdb import retry
from alumdb.catalog import Migration
from alumdb.runner.locking import ADVISORY_LOCK_KEY
from alumdb.tracking import Tracking

# Bounded so that one message stays small for the server's parser and progress shows
# often; a file larger than the byte bound goes alone.
BATCH_FILES = 100
BATCH_CHARS = 256 * 1024
# Each file's transaction announces itself with this notice when it starts, so the
# runner knows, live, which files of a message have committed (every one before it)
# and which file an error belongs to (the last one announced).
START_NOTICE = "alumdb: starting "
# Raised by the server when a file's own tracking insert names another version or name.
STRAY_SQLSTATE = "AL001"
# Raised by the server when a file's transaction finds the migration lock taken, or
# finds the file applied by another run once it holds the lock.
LOCK_BUSY_SQLSTATE = "AL002"
APPLIED_SQLSTATE = "AL003"
CONNECTION_CHECK_MS = 1000
OPENING_STATEMENTS = 6  # see opening()
# What the runner's connections are called in pg_stat_activity; while a file runs, its
# transaction adds the file's name (see file_application_name()).
APPLICATION_NAME = "alumdb migrate"


# Each file starts from the session a fresh psql would give it: whatever a file did
# to its session (SET ROLE, SET search_path, any GUC, temporary objects) is undone
# right after its COMMIT, in a transaction of its own (a setting such as
# default_transaction_read_only must be reset before the next BEGIN to take effect),
# in the same message, so in the same server session even behind a pooler. (A file
# that fails leaves nothing to undo: its transaction, SETs included, is rolled back.)
FRESH_SESSION = "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; "
FRESH_SESSION_STATEMENTS = 3
# The runner records a file as the user it logged in as, whatever role the file set.
AS_RUNNER = "SET LOCAL SESSION AUTHORIZATION DEFAULT; SET LOCAL ROLE NONE; "
# After a file that may create temporary objects (it then ends its message: this
# also drops the runner's temporary helper functions).
DISCARD_TEMP = "DISCARD TEMP; "
_TEMPORARY = re.compile(r"\b(temp|temporary|pg_temp)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Message:
    """One message of file transactions: its text, where each file starts in it, and
    the index of each file's first statement among the message's statements (``None``:
    unknown, the file does not parse alone)."""

    text: str
    starts: list[int]
    first_statements: list[int | None]

    def statement_of(self, index: int, completed: int) -> int | None:
        """The 0-based statement of file ``index`` that failed after ``completed``
        statements of the message succeeded (``None`` when it cannot be told)."""
        first = self.first_statements[index]
        if first is None:
            return None
        return completed - first if completed >= first else None


def may_create_temporary_objects(migration: Migration) -> bool:
    """Whether the file may leave temporary objects in its session (conservative)."""
    return _TEMPORARY.search(migration.sql) is not None


@dataclass(frozen=True)
class Framing:
    """What a run wraps around every file: fixed for the run."""

    tracking: Tracking
    lock_timeout: float
    helpers: bool  # the session may create the temporary helper functions

    @property
    def lock_timeout_ms(self) -> int:
        return retry.milliseconds(self.lock_timeout)


def batch(pending: list[Migration], start: int, alone: frozenset[str]) -> list[Migration]:
    """The consecutive transactional files from ``pending[start]`` one message carries.

    A file in ``alone`` (versions) gets a message of its own.
    """
    found: list[Migration] = []
    size = 0
    for migration in pending[start:]:
        if not migration.transactional or len(found) == BATCH_FILES:
            break
        if found and (size + len(migration.sql) > BATCH_CHARS or migration.version in alone):
            break
        found.append(migration)
        size += len(migration.sql)
        if migration.version in alone or may_create_temporary_objects(migration):
            break
    return found


def build(files: list[Migration], framing: Framing, final: Migration, *, opened: bool) -> Message:
    """``BEGIN``, opening, file, tracking row and ``COMMIT`` for each of ``files``.

    ``opened``: the first file's transaction is already open and holds the lock.
    ``final``: the run's last file (it commits with ``synchronous_commit = on``).
    """
    parts: list[str] = []
    starts: list[int] = []
    firsts: list[int | None] = []
    size = 0
    statements: int | None = 0
    for index, migration in enumerate(files):
        begin = not (opened and index == 0)
        head = "BEGIN; " if begin else ""
        if index == 0 and framing.helpers:
            head += helpers(framing.tracking)
        head += opening(migration, framing, last=migration is final)
        if statements is not None:
            statements += begin + 2 * (index == 0 and framing.helpers) + OPENING_STATEMENTS
        firsts.append(statements)
        starts.append(size + len(head))
        tail, tail_statements = closing(migration, framing)
        piece = head + migration.sql + tail
        parts.append(piece)
        size += len(piece)
        count = statement_count(migration)
        statements = (
            None if statements is None or count is None else statements + count + tail_statements
        )
    return Message("".join(parts), starts, firsts)


@functools.lru_cache(maxsize=4096)
def statement_count(migration: Migration) -> int | None:
    """How many statements the server runs for the file (``None``: it does not parse)."""
    from pglast import parser

    try:
        return len(json.loads(parser.parse_sql_json(migration.sql)).get("stmts", []))
    except parser.ParseError:
        return None


# What runs around each file in its transaction, as PL/pgSQL: the bodies of the two
# functions :func:`helpers` creates, or of a DO block per file where the session may
# not create temporary objects. Parameters: p_version, p_name, p_checksum.
#
# Opening: announce the file (:data:`START_NOTICE`); take the lock, raising
# :data:`LOCK_BUSY_SQLSTATE` when another run holds it (so nothing after it runs and no
# table lock is held while waiting: waiting with one would deadlock against the run
# holding the lock); re-check, with a snapshot taken after the lock is held, that the
# file is not applied (:data:`APPLIED_SQLSTATE`, with the recorded checksum); note
# the start time and how many tracking rows the transaction has written so far, for
# the closing. The tracking table is found with ``to_regclass()`` and, while that
# says "no such table", in ``pg_class``: the catalog cache behind ``to_regclass()``
# can still miss the table after another run created it while this one waited.
_OPENING_DECLARE = "rel oid := to_regclass({regclass}); recorded text;"
_OPENING_BODY = """
RAISE NOTICE '{notice}%', p_version;
IF NOT pg_try_advisory_xact_lock({key}) THEN
  RAISE SQLSTATE '{busy}';
END IF;
IF rel IS NULL THEN
  {oid_query} INTO rel;
END IF;
IF rel IS NOT NULL THEN
  SELECT coalesce(checksum::text, '') INTO recorded FROM {table} WHERE version = p_version;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '{applied}', MESSAGE = 'applied', DETAIL = recorded;
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
_CLOSING_DECLARE = "rel oid := to_regclass({regclass}); writes bigint; own text; stray record;"
_CLOSING_BODY = """
writes := pg_stat_get_xact_tuples_inserted(rel) + pg_stat_get_xact_tuples_updated(rel)
  + pg_stat_get_xact_tuples_deleted(rel) - current_setting('alumdb.writes')::bigint;
SELECT name INTO own FROM {table} WHERE version = p_version;
IF ((own IS NULL AND writes = 0) OR (own IS NOT DISTINCT FROM p_name AND writes = 1))
    IS NOT TRUE THEN
  SELECT version::text AS version, name::text AS name INTO stray FROM {table}
   WHERE xmin = pg_current_xact_id()::xid AND (version, name) <> (p_version, p_name) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '{stray}', MESSAGE = 'stray tracking row',
      DETAIL = stray.version, HINT = stray.name;
  END IF;
END IF;
INSERT INTO {table} (version, name, checksum, duration_ms)
VALUES (p_version, p_name, p_checksum, round(1000 * (extract(epoch FROM clock_timestamp())
  - current_setting('alumdb.started')::numeric))::int)
ON CONFLICT (version) DO UPDATE
SET checksum = EXCLUDED.checksum, duration_ms = EXCLUDED.duration_ms;
"""


def _fill(template: str, tracking: Tracking) -> str:
    """A body or declaration above with the run's names in (quoted by psycopg.sql)."""
    return (
        sql.SQL(template)
        .format(
            regclass=sql.Literal(tracking.qualified),
            table=tracking.table,
            oid_query=tracking.oid_query(),
            key=sql.Literal(ADVISORY_LOCK_KEY),
            notice=sql.SQL(START_NOTICE),
            busy=sql.SQL(LOCK_BUSY_SQLSTATE),
            applied=sql.SQL(APPLIED_SQLSTATE),
            stray=sql.SQL(STRAY_SQLSTATE),
        )
        .as_string(None)
    )


def helpers(tracking: Tracking) -> str:
    """``pg_temp.alumdb_open`` and ``pg_temp.alumdb_close``, created at each message's start.

    A function's PL/pgSQL is compiled and its queries planned once per session, where a
    DO block is compiled and planned again every time: per file, about 0.7 ms less of
    the server's time. Temporary, so nothing is left in the database's schemas; created
    again in every message, because behind a pooler in transaction mode each message
    may meet another server session (a message is one round trip, so one session).
    """
    return "".join(
        f"CREATE OR REPLACE FUNCTION pg_temp.{name}({params}) RETURNS void"
        f" LANGUAGE plpgsql AS $alumdb$ DECLARE {_fill(declare, tracking)}"
        f" BEGIN {_fill(body, tracking)} END $alumdb$; "
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


def _literal(value: str) -> str:
    return sql.Literal(value).as_string(None)


def file_application_name(migration: Migration) -> str:
    """``alumdb migrate NNN_name.sql``: the session's name while the file runs (the
    server keeps 63 bytes of it)."""
    return f"{APPLICATION_NAME} {migration.filename}"


def opening(migration: Migration, framing: Framing, *, last: bool) -> str:
    """What runs in the file's transaction before the file, in the same message.

    ``application_name``: ``pg_stat_activity`` shows which file runs (SET LOCAL: the
    COMMIT or ROLLBACK gives the session its own name back).

    ``client_connection_check_interval``: if this process dies mid-file, the server
    sees the closed socket within a second, rolls the file back and frees the lock,
    instead of finishing a long statement first.
    """
    version = _literal(migration.version)
    if framing.helpers:
        check = f"SELECT pg_temp.alumdb_open({version});"
    else:
        declare = f"p_version text := {version}; {_fill(_OPENING_DECLARE, framing.tracking)}"
        body = _fill(_OPENING_BODY, framing.tracking)
        check = f"DO $alumdb$ DECLARE {declare} BEGIN {body} END $alumdb$;"
    name = _literal(file_application_name(migration))
    return (  # OPENING_STATEMENTS statements
        f"SET LOCAL application_name = {name}; SET LOCAL client_min_messages = notice; {check}"
        f" SET LOCAL lock_timeout = {framing.lock_timeout_ms};"
        f" SET LOCAL synchronous_commit = {'on' if last else 'off'};"
        f" SET LOCAL client_connection_check_interval = {CONNECTION_CHECK_MS}; "
    )


def closing(migration: Migration, framing: Framing) -> tuple[str, int]:
    """After the file: refuse stray tracking rows, record the file, COMMIT, then undo
    what the file did to its session (see :data:`FRESH_SESSION`). Returns the text and
    how many statements it holds."""
    version, name, checksum = (
        _literal(value) for value in (migration.version, migration.name, migration.checksum)
    )
    if framing.helpers:
        check = f"SELECT pg_temp.alumdb_close({version}, {name}, {checksum});"
    else:
        declare = (
            f"p_version text := {version}; p_name text := {name};"
            f" p_checksum text := {checksum}; {_fill(_CLOSING_DECLARE, framing.tracking)}"
        )
        body = _fill(_CLOSING_BODY, framing.tracking)
        check = f"DO $alumdb$ DECLARE {declare} BEGIN {body} END $alumdb$;"
    fresh = FRESH_SESSION + (DISCARD_TEMP if may_create_temporary_objects(migration) else "")
    statements = 6 + FRESH_SESSION_STATEMENTS + may_create_temporary_objects(migration)
    # An explicit BEGIN: a COMMIT that ends the implicit block of a multi-statement
    # message draws "WARNING: there is no transaction in progress" on every file.
    return f"\n; {AS_RUNNER}{check} COMMIT; BEGIN; {fresh}COMMIT; ", statements
