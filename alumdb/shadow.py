"""The shadow database drift replays migrations into: made for one run, gone after it.

Three kinds, each a context manager yielding where the empty shadow database is:

- :func:`on_server` (the default): ``CREATE DATABASE alumdb_shadow_<random>`` on the
  target's own server (so the same major version, the same available extensions and
  roles), with the target's encoding and locale, from ``template0``; dropped ``WITH
  (FORCE)`` afterwards.
- :func:`in_container`: a throwaway compose project of ``POSTGRES_IMAGE`` (for a role
  that may not create databases); removed with its volume afterwards.
- :func:`at_url`: an empty database someone provides (``--shadow-url``); refused when
  it is not empty, emptied again afterwards.

The clean-up runs whatever ends the run: an error, Ctrl-C (SIGINT) or SIGTERM
(turned into ``KeyboardInterrupt`` while a shadow exists). A second Ctrl-C during the
clean-up is ignored, so the clean-up is not cut short.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql

from alumdb import database, environment
from alumdb.errors import EnvironmentFailure, UsageError

PREFIX = "alumdb_shadow_"
CONTAINER_PREFIX = "alumdbshadow"


@dataclass(frozen=True)
class Shadow:
    """Where the shadow database is, and a description for people."""

    params: database.Conninfo
    description: str


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (as SIGINT does) while the shadow exists."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _uninterrupted(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` with SIGINT and SIGTERM ignored (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        cleanup()
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cleanup()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def may_create_databases(conn: psycopg.Connection[Any]) -> bool:
    """Whether the role may CREATE DATABASE here (never on a standby, which is read-only)."""
    row = conn.execute(
        "SELECT (rolcreatedb OR rolsuper) AND NOT pg_is_in_recovery()"
        " FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(row and row[0])


def leftovers(conn: psycopg.Connection[Any]) -> list[str]:
    """Shadow databases on the server now (another drift running, or a killed one's)."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1", (PREFIX,)
    ).fetchall()
    return [str(row[0]) for row in rows]


def _create_statement(conn: psycopg.Connection[Any], name: str) -> sql.Composed:
    """CREATE DATABASE with the encoding and locale of ``conn``'s database."""
    row = conn.execute(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider,"
        " daticulocale FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None  # noqa: S101 - the current database exists
    encoding, collate, ctype, provider, icu = row
    parts = [
        sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)),
        sql.SQL("ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
            sql.Literal(encoding), sql.Literal(collate), sql.Literal(ctype)
        ),
    ]
    if provider == "i":
        parts.append(sql.SQL("LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(icu)))
    return sql.SQL(" ").join(parts)


def _drop(params: database.Conninfo, name: str) -> None:
    try:
        with database.connect(params, application_name="alumdb drift") as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        raise EnvironmentFailure(
            f"could not drop the shadow database {name}: {database.first_line(exc)}; drop it with "
            f"DROP DATABASE {name} WITH (FORCE)"
        ) from None


def _create(params: database.Conninfo, name: str) -> None:
    with database.connect(params, application_name="alumdb drift") as admin:
        try:
            admin.execute(_create_statement(admin, name))
        except psycopg.Error as exc:
            raise UsageError(
                f"cannot create the shadow database {name} on the target's server: "
                f"{database.first_line(exc)}; pass --shadow-container or --shadow-url URL"
            ) from None


@contextlib.contextmanager
def on_server(params: database.Conninfo) -> Iterator[Shadow]:
    """A new database beside the target's, dropped (WITH FORCE) whatever happens.

    The drop uses a connection of its own (one interrupted mid-statement may be
    unusable) and ``IF EXISTS`` (an interrupted CREATE may or may not have finished).
    """
    name = f"{PREFIX}{secrets.token_hex(6)}"
    try:
        with _interruptible():
            _create(params, name)
            yield Shadow({**params, "dbname": name}, f"database {name} on the target's server")
    finally:
        _uninterrupted(lambda: _drop(params, name))


@contextlib.contextmanager
def in_container(project_dir: Path, wait: float) -> Iterator[Shadow]:
    """A throwaway compose project of ``POSTGRES_IMAGE``, removed with its volume."""
    env = environment.resolve("dev", project_dir, environment.scratch_settings(CONTAINER_PREFIX))
    client = environment.docker_client()
    try:
        with _interruptible():
            up = environment.up(
                env, client, timeout=wait, probe=lambda e: database.probe(e.conninfo())
            )
            yield Shadow(up.endpoint.conninfo(), f"container {up.endpoint.container}")
    finally:
        _uninterrupted(lambda: environment.down(env, volumes=True))


# --- a database someone provides (--shadow-url) -------------------------------------

CONTENTS = """
SELECT kind || ' ' || name FROM (
  SELECT 'schema' AS kind, nspname::text AS name FROM pg_namespace
   WHERE nspname NOT IN ('public', 'information_schema') AND nspname !~ '^pg_'
  UNION ALL SELECT 'extension', extname::text FROM pg_extension WHERE extname <> 'plpgsql'
  UNION ALL SELECT 'relation', c.oid::regclass::text FROM pg_class c
   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
  UNION ALL SELECT 'function', p.oid::regprocedure::text FROM pg_proc p
   JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
  UNION ALL SELECT 'type', t.oid::regtype::text FROM pg_type t
   JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public'
   AND t.typtype IN ('e', 'd', 'r', 'm')
  UNION ALL SELECT 'collation', c.oid::regcollation::text FROM pg_collation c
   JOIN pg_namespace n ON n.oid = c.collnamespace WHERE n.nspname = 'public'
) o ORDER BY 1
"""

EMPTYING = """
SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', nspname) FROM pg_namespace
 WHERE nspname NOT IN ('public', 'information_schema') AND nspname !~ '^pg_'
UNION ALL SELECT format('DROP EXTENSION IF EXISTS %I CASCADE', extname) FROM pg_extension
 WHERE extname <> 'plpgsql'
UNION ALL SELECT format('DROP %s IF EXISTS %s CASCADE',
   CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
     WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
   c.oid::regclass) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i')
UNION ALL SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
UNION ALL SELECT format('DROP TYPE IF EXISTS %s CASCADE', t.oid::regtype)
 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public'
 AND t.typtype IN ('e', 'd', 'r', 'm')
UNION ALL SELECT format('DROP COLLATION IF EXISTS %s', c.oid::regcollation)
 FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE n.nspname = 'public'
"""


def contents(conn: psycopg.Connection[Any]) -> list[str]:
    """What a database holds beyond an empty one's ``public`` schema and plpgsql."""
    return [str(row[0]) for row in conn.execute(CONTENTS).fetchall()]


def empty(conn: psycopg.Connection[Any]) -> None:
    """Drop everything :func:`contents` lists (the statements come from the catalog).

    Best effort, as it runs while another error may be on its way: a statement that
    fails (an object an earlier CASCADE took along, say) is retried in the next round.
    """
    for _ in range(3):
        try:
            statements = [str(row[0]) for row in conn.execute(EMPTYING).fetchall()]
        except psycopg.Error as exc:
            raise EnvironmentFailure(
                f"could not empty the shadow database {conn.info.dbname!r} after the run: "
                f"{database.first_line(exc)}; empty it by hand before the next drift"
            ) from None
        if not statements:
            return
        for statement in statements:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL(statement))


@contextlib.contextmanager
def at_url(params: database.Conninfo, what: str = "--shadow-url") -> Iterator[Shadow]:
    """An empty database someone provides; refused unless empty, emptied afterwards."""
    conn = database.connect(params, application_name="alumdb drift")
    with conn:
        found = contents(conn)
        if found:
            raise UsageError(
                f"{what} {database.redact(params)}: the database is not empty ({len(found)} "
                f"objects, {found[0]} first); give an empty database: drift replays the "
                "migrations into it and empties it again afterwards"
            )
        try:
            with _interruptible():
                yield Shadow(params, f"database {database.redact(params)} (--shadow-url)")
        finally:
            _uninterrupted(lambda: empty(conn))
