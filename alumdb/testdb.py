"""Databases for tests: a migrated template per folder state, cloned once per test.

The migrations are applied once into a *template* database whose name carries a
hash of the folder's identity (its resolved path) and of every migration's
version, name and checksum:

    alumdb_tpl_<folder:8>_<state:16>

Each test then gets ``CREATE DATABASE alumdb_test_<random> TEMPLATE <template>``
(a file-level copy: milliseconds, whatever the number of migrations) and the clone
is dropped ``WITH (FORCE)`` after the test.

* A template of an unchanged folder is reused by every later session; any edit,
  addition or removal of a migration gives a new name, so a new template, and the
  older templates of the same folder are dropped once the new one exists.
* Builds never race (pytest-xdist workers, two sessions at once): the build runs
  under a session advisory lock keyed by the folder, re-checks whether another
  process finished the template meanwhile, and migrates a database under a
  temporary name that is renamed only once complete, so a half-built template
  (a killed worker) is never cloned; the next build drops it and starts again.
* A finished template is marked ``IS_TEMPLATE true, ALLOW_CONNECTIONS false``:
  nobody can connect to it and change it behind the tests' back.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql

from alumdb import catalog as catalog_mod
from alumdb import database, runner
from alumdb.errors import DatabaseUnavailableError, MigrationFailed, UsageError

TEMPLATE_PREFIX = "alumdb_tpl_"
BUILD_PREFIX = "alumdb_bld_"
CLONE_PREFIX = "alumdb_test_"
LOCK_NAMESPACE = "alumdb.testdb.template:"
# A clone pool's connections are called "alumdb-clones <token> <folder>_<state>": the
# token is in its clones' names (alumdb.clonepool), the keys name the template it
# clones, which no other session's build may then drop.
POOL_PREFIX = "alumdb-clones "


@dataclass(frozen=True)
class Template:
    """The template of one migrations folder state, and what ensuring it cost."""

    name: str
    built: bool  # False when an existing template was reused
    seconds: float
    removed: tuple[str, ...] = ()  # older templates of the same folder, dropped


def folder_key(directory: Path) -> str:
    """Eight hex digits naming a migrations folder (its resolved path)."""
    return hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:8]


def state_key(cat: catalog_mod.Catalog) -> str:
    """Sixteen hex digits naming the folder's content: every version, name and checksum."""
    digest = hashlib.sha256()
    for m in cat:
        digest.update(f"{m.version}\0{m.name}\0{m.checksum}\n".encode())
    return digest.hexdigest()[:16]


def template_name(cat: catalog_mod.Catalog) -> str:
    return f"{TEMPLATE_PREFIX}{folder_key(cat.directory)}_{state_key(cat)}"


def pool_application_name(token: str, template: str) -> str:
    """What a clone pool of ``template`` calls its connections (see :data:`POOL_PREFIX`)."""
    return f"{POOL_PREFIX}{token} {template.removeprefix(TEMPLATE_PREFIX)}"


def url_for(params: database.Conninfo, dbname: str) -> str:
    """A ``postgresql://`` URL of ``params`` with ``dbname`` (what a test connects to)."""
    rest = {k: str(v) for k, v in params.items() if k not in {"user", "password", "host", "port"}}
    rest.pop("dbname", None)
    user = quote(str(params.get("user") or ""), safe="")
    password = quote(str(params.get("password") or ""), safe="")
    auth = f"{user}{':' + password if password else ''}@" if user else ""
    host = str(params.get("host") or "localhost")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    port = f":{params['port']}" if params.get("port") else ""
    query = f"?{urlencode(rest)}" if rest else ""
    return f"postgresql://{auth}{host}{port}/{quote(dbname, safe='')}{query}"


def admin_connection(params: database.Conninfo, wait: float = 0.0) -> psycopg.Connection[Any]:
    """An autocommit connection to the server's maintenance database (from the URL)."""
    return database.connect(params, wait=wait, application_name="alumdb-testdb")


def _exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute(
        "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    return bool(row and row[0])


@contextmanager
def _folder_lock(conn: psycopg.Connection[Any], folder: str) -> Iterator[None]:
    """The server-wide session advisory lock of one folder's template builds."""
    key = f"{LOCK_NAMESPACE}{folder}"
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def drop(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop a database (a template is first unmarked, which DROP requires)."""
    ident = sql.Identifier(name)
    found = conn.execute(
        "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    if found is None:
        return
    if found[0]:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def ensure_template(params: database.Conninfo, cat: catalog_mod.Catalog) -> Template:
    """The template of ``cat``'s current state, built (once, server-wide) if missing."""
    if not len(cat):
        raise UsageError(f"{cat.directory}: no migration files (NNN_name.sql) to build a template")
    started = time.monotonic()
    name = template_name(cat)
    folder = folder_key(cat.directory)
    with admin_connection(params) as conn:
        if _exists(conn, name):  # the common case: no lock needed
            return Template(name, built=False, seconds=time.monotonic() - started)
        with _folder_lock(conn, folder):
            if _exists(conn, name):  # another worker built it while we waited
                return Template(name, built=False, seconds=time.monotonic() - started)
            _build(conn, params, cat, name)
            removed = _remove_stale(conn, folder, keep=name)
    return Template(name, built=True, seconds=time.monotonic() - started, removed=removed)


def _build(
    conn: psycopg.Connection[Any], params: database.Conninfo, cat: catalog_mod.Catalog, name: str
) -> None:
    """Migrate a database under a temporary name, then rename and freeze it."""
    building = BUILD_PREFIX + name.removeprefix(TEMPLATE_PREFIX)
    drop(conn, building)  # left by a build that was killed half-way
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
    try:
        with database.connect({**params, "dbname": building}) as target:
            runner.migrate(target, cat)
    except (MigrationFailed, psycopg.Error) as exc:
        drop(conn, building)
        if isinstance(exc, MigrationFailed):
            raise
        raise DatabaseUnavailableError(
            f"building the test template from {cat.directory} failed: {exc}"
        ) from None
    except BaseException:
        drop(conn, building)
        raise
    conn.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(building), sql.Identifier(name)
        )
    )
    conn.execute(
        sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
            sql.Identifier(name)
        )
    )


def _remove_stale(conn: psycopg.Connection[Any], folder: str, keep: str) -> tuple[str, ...]:
    """Drop the older templates (and abandoned builds) of the same folder, except those a
    running session still clones from (a later build drops them)."""
    rows = conn.execute(
        "SELECT d.datname FROM pg_database d"
        " WHERE (starts_with(d.datname, %(tpl)s) OR starts_with(d.datname, %(bld)s))"
        "   AND d.datname <> %(keep)s AND NOT EXISTS ("
        "     SELECT 1 FROM pg_stat_activity a WHERE starts_with(a.application_name, %(pool)s)"
        "       AND split_part(a.application_name, ' ', 3)"
        "         = split_part(d.datname, '_', 3) || '_' || split_part(d.datname, '_', 4))"
        " ORDER BY d.datname",
        {
            "tpl": f"{TEMPLATE_PREFIX}{folder}_",
            "bld": f"{BUILD_PREFIX}{folder}_",
            "keep": keep,
            "pool": POOL_PREFIX,
        },
    ).fetchall()
    names = tuple(str(r[0]) for r in rows)
    for stale in names:
        drop(conn, stale)
    return names


def clone(conn: psycopg.Connection[Any], template: str, name: str | None = None) -> str:
    """A new database copied from ``template`` (named ``name``, else at random); its name."""
    name = name or f"{CLONE_PREFIX}{secrets.token_hex(6)}"
    conn.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    )
    return name
