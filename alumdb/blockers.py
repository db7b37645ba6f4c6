"""Who blocks a migration: the sessions holding the locks it waits for, as data.

Read from ``pg_locks``, ``pg_blocking_pids()`` and ``pg_stat_activity``, on a
connection that is not queued for a lock itself: a separate one while the migration
waits (:func:`blocking`), or the migration's own after its transaction rolled back
(:func:`holding`, :func:`advisory_holders`). None of these queries takes a lock on a
table, so asking never adds to the queue.

Each :class:`Blocker` renders as one line for a person (:meth:`Blocker.describe`) and
carries the SQL an operator would run to end that session.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

# Which lock modes conflict with which (PostgreSQL's table-level lock matrix, in the
# documentation's "Conflicting Lock Modes"): a session holding a mode in the set of the
# mode a migration asks for blocks it.
_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
CONFLICTS: dict[str, frozenset[str]] = {
    "AccessShareLock": frozenset({"AccessExclusiveLock"}),
    "RowShareLock": frozenset({"ExclusiveLock", "AccessExclusiveLock"}),
    "RowExclusiveLock": frozenset(_MODES[4:]),
    "ShareUpdateExclusiveLock": frozenset(_MODES[3:]),
    "ShareLock": frozenset({*_MODES[2:4], *_MODES[5:]}),
    "ShareRowExclusiveLock": frozenset(_MODES[2:]),
    "ExclusiveLock": frozenset(_MODES[1:]),
    "AccessExclusiveLock": frozenset(_MODES),
}
QUERY_CHARS = 60  # how much of a blocker's query a line shows

# The columns of pg_stat_activity a Blocker reads, for session ``a``. Ages are measured
# with clock_timestamp(): now() is the start of this statement's transaction.
_ACTIVITY = """
    a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
    coalesce(a.state, 'unknown'),
    extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
    extract(epoch FROM clock_timestamp() - a.query_start)::float8,
    coalesce(a.query, ''), a.xact_start, a.backend_start
"""

# Sessions holding (granted) or queued for (not granted) a lock on one of the relations
# %(names)s, other than this session; the oldest transactions first, holders before
# waiters. to_regclass() takes no lock and answers NULL for a relation that does not
# exist (yet).
_HOLDING = f"""
SELECT {_ACTIVITY}, l.relation::regclass::text, l.mode, l.granted
  FROM pg_catalog.pg_locks l
  JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'relation'
   AND l.database = (SELECT oid FROM pg_catalog.pg_database
                      WHERE datname = current_database())
   AND (%(names)s::text[] IS NULL
        OR l.relation IN (SELECT to_regclass(n) FROM unnest(%(names)s::text[]) AS n))
   AND l.relation >= 16384  -- FirstNormalObjectId: not the system catalogs
   AND l.pid <> pg_backend_pid()
   AND l.mode = ANY (%(modes)s)
 ORDER BY l.granted DESC, a.xact_start NULLS LAST, a.pid
"""

# The sessions pg_blocking_pids() names for %(pid)s, with the relation it waits for.
_BLOCKING = f"""
SELECT {_ACTIVITY},
       (SELECT w.relation::regclass::text FROM pg_catalog.pg_locks w
         WHERE w.pid = %(pid)s AND NOT w.granted AND w.locktype = 'relation' LIMIT 1),
       (SELECT string_agg(DISTINCT h.mode, ', ') FROM pg_catalog.pg_locks h
         WHERE h.pid = a.pid AND h.relation = (
               SELECT w.relation FROM pg_catalog.pg_locks w
                WHERE w.pid = %(pid)s AND NOT w.granted AND w.locktype = 'relation' LIMIT 1)),
       true
  FROM pg_catalog.pg_stat_activity a
 WHERE a.pid = ANY (pg_blocking_pids(%(pid)s))
 ORDER BY a.xact_start NULLS LAST, a.pid
"""

# The sessions holding the advisory lock %(key)s (a bigint key, which pg_locks splits
# into classid and objid; objsubid 1 marks a bigint key).
_ADVISORY = f"""
SELECT {_ACTIVITY}, NULL::text, NULL::text, l.granted
  FROM pg_catalog.pg_locks l
  JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND ((l.classid::bigint << 32) | l.objid::bigint) = %(key)s
   AND l.pid <> pg_backend_pid()
 ORDER BY a.xact_start NULLS LAST, a.pid
"""


@dataclass(frozen=True)
class Blocker:
    """A session that holds (or is queued ahead for) a lock another session needs."""

    pid: int
    application_name: str
    user: str
    state: str
    xact_age: float | None  # seconds since its transaction began (None: none open)
    query_age: float | None  # seconds since its current or last query began
    query: str  # the start of that query, string literals masked
    xact_start: datetime | None
    backend_start: datetime | None
    relation: str | None = None  # the relation it blocks (None: an advisory lock)
    mode: str | None = None
    granted: bool = True

    @property
    def since(self) -> datetime | None:
        """Since when it holds what it holds, at the latest: its transaction's start."""
        return self.xact_start or self.backend_start

    def describe(self) -> str:
        """One line: ``pid 4242 (application 'crm-report', user app, idle in transaction, ...)``."""
        parts = [
            f"application {self.application_name!r}"
            if self.application_name
            else "no application_name",
            f"user {self.user}" if self.user else "user unknown",
            self.state,
        ]
        if self.xact_age is not None:
            parts.append(f"transaction {_age(self.xact_age)} old")
        if self.query_age is not None and self.query:
            parts.append(f"query started {_age(self.query_age)} ago: {self.query}")
        held = ""
        if self.mode:
            held = f"; {'holds' if self.granted else 'queued for'} {self.mode}"
            held += f" on {self.relation}" if self.relation else ""
        return f"pid {self.pid} ({', '.join(parts)}){held}"

    def terminate_sql(self) -> str:
        """Ends the session (and rolls back its transaction)."""
        return f"SELECT pg_terminate_backend({self.pid});"


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def mask_query(text: str, limit: int = QUERY_CHARS) -> str:
    """The start of a query on one line, string literals shown as ``'?'`` (they may hold
    a password or a person's data)."""
    flat = re.sub(r"'(?:[^']|'')*'?", "'?'", text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _blocker(row: tuple[Any, ...]) -> Blocker:
    pid, app, user, state, xact_age, query_age, query, xact_start, backend_start = row[:9]
    relation, mode, granted = row[9:12]
    return Blocker(
        pid=int(pid),
        application_name=str(app),
        user=str(user),
        state=str(state),
        xact_age=float(xact_age) if xact_age is not None else None,
        query_age=float(query_age) if query_age is not None else None,
        query=mask_query(str(query)),
        xact_start=xact_start,
        backend_start=backend_start,
        relation=str(relation) if relation is not None else None,
        mode=str(mode) if mode is not None else None,
        granted=bool(granted),
    )


def blocking(conn: psycopg.Connection[Any], pid: int) -> list[Blocker]:
    """Who blocks session ``pid`` right now (``pg_blocking_pids``), with the relation it
    waits for; empty when it waits for nothing. Ask on another connection than ``pid``'s."""
    return [_blocker(row) for row in conn.execute(_BLOCKING, {"pid": pid})]


def holding(
    conn: psycopg.Connection[Any],
    relations: list[str] | None,
    mode: str = "AccessExclusiveLock",
) -> list[Blocker]:
    """The other sessions holding, or queued for, a lock on one of ``relations`` (``None``:
    on any table of this database) that conflicts with ``mode``: the oldest transaction
    first, holders before waiters.

    Asked by the migration's own connection after its transaction rolled back (it holds
    no lock then), with the relations its statements name (:func:`relations_in`).
    """
    if relations is not None and not relations:
        return []
    if mode not in CONFLICTS:
        raise ValueError(f"unknown lock mode {mode!r}; one of {', '.join(_MODES)}")
    params = {"names": relations, "modes": sorted(CONFLICTS[mode])}
    found: dict[int, Blocker] = {}
    for row in conn.execute(_HOLDING, params):
        blocker = _blocker(row)
        found.setdefault(blocker.pid, blocker)  # a session's first (oldest) lock row
    return list(found.values())


def advisory_holders(conn: psycopg.Connection[Any], key: int) -> list[Blocker]:
    """The other sessions holding the advisory lock ``key`` (a bigint)."""
    return [_blocker(row) for row in conn.execute(_ADVISORY, {"key": key})]


def relations_in(sql: str) -> list[str]:
    """The relations ``sql`` names (tables, views, sequences), schema-qualified where it
    qualifies them, in order of first appearance; empty when it does not parse.

    The statements inside a ``DO`` block count too (read with PostgreSQL's PL/pgSQL
    parser); SQL built at run time (``EXECUTE format(...)``) cannot be seen.
    """
    from pglast import parser

    try:
        tree = json.loads(parser.parse_sql_json(sql))
    except parser.ParseError:
        return []
    names: dict[str, None] = {}
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("DoStmt"), dict):
                for inner in _do_statements(node["DoStmt"]):
                    names.update(dict.fromkeys(relations_in(inner)))
            # A RangeVar: wrapped in {"RangeVar": ...} in lists, bare as a typed field.
            ranged = node.get("RangeVar", node)
            if isinstance(ranged, dict) and isinstance(ranged.get("relname"), str):
                schema = ranged.get("schemaname")
                name = _quote(ranged["relname"])
                names.setdefault(f"{_quote(schema)}.{name}" if schema else name, None)
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return list(names)


def _do_statements(do: dict[str, Any]) -> list[str]:
    """The SQL statements of a ``DO`` block's PL/pgSQL body (empty when it is not one)."""
    from pglast import parser

    body = None
    language = "plpgsql"
    for arg in do.get("args", []):
        elem = arg.get("DefElem", {})
        value = elem.get("arg", {}).get("String", {}).get("sval")
        if elem.get("defname") == "as":
            body = value
        elif elem.get("defname") == "language" and value:
            language = value
    if body is None or language != "plpgsql":
        return []
    tag = "$alumdb_do$"
    if tag in body:
        return []
    wrapped = f"CREATE FUNCTION alumdb_do() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}"
    try:
        tree = json.loads(parser.parse_plpgsql_json(wrapped))
    except parser.ParseError:
        return []
    found: list[str] = []
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            expr = node.get("PLpgSQL_expr")
            # parseMode 0: a whole statement (conditions and assignments are expressions).
            if isinstance(expr, dict) and expr.get("parseMode", 0) == 0 and "query" in expr:
                found.append(str(expr["query"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def lock_mode(sql: str) -> str:
    """The table lock the first statement of ``sql`` asks for, as far as the blockers go:
    ``SHARE`` for ``CREATE INDEX``, ``SHARE ROW EXCLUSIVE`` for ``CREATE TRIGGER``,
    ``SHARE UPDATE EXCLUSIVE`` for the ``CONCURRENTLY`` forms (which queue no reads or
    writes: see :func:`queues_traffic`), else ``ACCESS EXCLUSIVE``
    (most of ``ALTER TABLE``, and the safe assumption)."""
    from pglast import parser

    try:
        stmts = json.loads(parser.parse_sql_json(sql)).get("stmts", [])
    except parser.ParseError:
        return "AccessExclusiveLock"
    stmt = stmts[0].get("stmt", {}) if stmts else {}
    if "IndexStmt" in stmt:
        concurrent = stmt["IndexStmt"].get("concurrent")
        return "ShareUpdateExclusiveLock" if concurrent else "ShareLock"
    if "CreateTrigStmt" in stmt:
        return "ShareRowExclusiveLock"
    if stmt.get("DropStmt", {}).get("concurrent") or _reindex_concurrently(stmt):
        return "ShareUpdateExclusiveLock"
    return "AccessExclusiveLock"


def queues_traffic(sql: str) -> bool:
    """Whether the statement's table lock conflicts with the application's reads and
    writes (so the application queues behind it while it waits): not the
    ``CONCURRENTLY`` forms."""
    return bool(CONFLICTS[lock_mode(sql)] & {"AccessShareLock", "RowExclusiveLock"})


def _reindex_concurrently(stmt: dict[str, Any]) -> bool:
    params = stmt.get("ReindexStmt", {}).get("params", [])
    return any(p.get("DefElem", {}).get("defname") == "concurrently" for p in params)


def _quote(identifier: str) -> str:
    """``identifier`` as to_regclass() reads it (quoted unless plain lower case)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", identifier):
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def summary(blockers: list[Blocker], limit: int = 2) -> str:
    """The first ``limit`` blockers described, and how many more there are."""
    if not blockers:
        return "no session holds a conflicting lock any more"
    shown = "; ".join(b.describe() for b in blockers[:limit])
    more = len(blockers) - limit
    return shown + (f"; and {more} more session(s)" if more > 0 else "")


def end_session_sql(blockers: list[Blocker]) -> str:
    """What an operator runs to end the blocking sessions (their transactions roll back)."""
    return " ".join(b.terminate_sql() for b in blockers)
