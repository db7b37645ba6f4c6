"""Drift by replay: what a database should be, built from its own history, against what it is.

1. The files of the migrations the target recorded are verified on disk first (the
   runner's own plan, as ``--dry-run`` makes it: reads only): an applied file edited
   or deleted stops the run with the runner's changed-file error (exit 6) before
   anything is replayed.
2. The target's schema and its ``schema_migrations`` rows are read in one
   ``REPEATABLE READ, READ ONLY`` transaction (with a short ``lock_timeout``): the
   target is only read, and the only lock taken beyond the catalogs' is ACCESS SHARE
   on ``schema_migrations`` while its rows are read.
3. Exactly the recorded migrations (not the whole folder: a database at 005 is
   compared with 001..005) are replayed by the runner into a shadow database
   (:mod:`alumdb.shadow`), whose schema is then read the same way.
4. :func:`alumdb.drift.compare` says what differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from alumdb import catalog, database, drift, environment, introspect, runner, shadow, tracking
from alumdb.errors import AlumdbError, DatabaseUnavailableError, MigrationFailed, UsageError

LOCK_TIMEOUT = "2s"  # reading schema_migrations never waits long behind a migration's lock


@dataclass(frozen=True)
class Result:
    """What ``invoke drift`` found."""

    comparison: drift.Comparison
    replayed: tuple[catalog.Migration, ...]
    shadow: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def connection_params(conn: psycopg.Connection[Any]) -> database.Conninfo:
    """The parameters ``conn`` was opened with, its password included."""
    params: database.Conninfo = dict(conn.info.get_parameters())
    if conn.info.password:
        params["password"] = conn.info.password
    return params


def read_snapshot(
    conn: psycopg.Connection[Any],
) -> tuple[list[tracking.AppliedRow], introspect.Snapshot]:
    """The recorded migrations and the schema, in one read-only transaction."""
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            applied = tracking.read_applied(conn)
            snap = introspect.read(conn)
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(
            f"reading the schema of database {conn.info.dbname!r} failed: "
            f"{database.first_line(exc)} "
            f"(SQLSTATE {exc.sqlstate}); try again"
        ) from None
    return applied, snap


def _choose_shadow(
    conn: psycopg.Connection[Any],
    project_dir: Path,
    shadow_url: database.Conninfo | None,
    container: bool,
    wait: float,
) -> AbstractContextManager[shadow.Shadow]:
    if shadow_url is not None:
        return shadow.at_url(shadow_url)
    if container or not shadow.may_create_databases(conn):
        if not container:
            try:
                environment.docker_client()
            except AlumdbError:
                raise UsageError(
                    f"role {conn.info.user!r} may not create databases here (or the server "
                    "is a read-only standby), so drift cannot make its shadow database on "
                    "the target's server, and Docker is not reachable for a throwaway "
                    "container; pass --shadow-url URL of an empty database"
                ) from None
        return shadow.in_container(project_dir, wait)
    return shadow.on_server(connection_params(conn))


def _replay(
    target_major: int, place: shadow.Shadow, recorded: catalog.Catalog, wait: float
) -> introspect.Snapshot:
    with database.connect(place.params, wait=wait, application_name="alumdb drift") as conn:
        major = conn.info.server_version // 10000
        if major != target_major:
            raise UsageError(
                f"the shadow ({place.description}) runs PostgreSQL {major}, the target "
                f"{target_major}: catalogs of different major versions do not compare; use a "
                f"shadow of PostgreSQL {target_major} (POSTGRES_IMAGE, or --shadow-url)"
            )
        if len(recorded):
            try:
                runner.migrate(conn, recorded)
            except MigrationFailed as exc:
                raise MigrationFailed(
                    f"replaying the recorded migrations into the shadow failed: {exc}"
                ) from None
        return read_snapshot(conn)[1]


def check(
    conn: psycopg.Connection[Any],
    folder: catalog.Catalog,
    *,
    project_dir: Path,
    shadow_url: database.Conninfo | None = None,
    container: bool = False,
    wait: float = 60.0,
    on_progress: Progress = _quiet,
) -> Result:
    """Compare the schema of ``conn``'s database with what its recorded migrations make."""
    started = time.monotonic()
    # The runner's own plan (a dry run reads and writes nothing) refuses an applied file
    # edited or deleted on disk. No session-level SET here: through a pooler in
    # transaction mode it would outlive this run in a server session the application
    # uses; the snapshot's transaction is READ ONLY by itself.
    runner.migrate(conn, folder, runner.Options(dry_run=True, allow_out_of_order=True))
    applied, actual = read_snapshot(conn)
    versions = [row.version for row in applied]
    recorded = catalog.Catalog(folder.directory, tuple(catalog.select(folder, versions)))
    notes = [
        f"note: shadow database {name} exists on the server (another drift running, or "
        f"left by a killed one: DROP DATABASE {name} WITH (FORCE) removes it)"
        for name in (shadow.leftovers(conn) if shadow_url is None and not container else [])
    ]
    with _choose_shadow(conn, project_dir, shadow_url, container, wait) as place:
        on_progress(f"replaying {_span(recorded)} into {place.description}")
        expected = _replay(conn.info.server_version // 10000, place, recorded, wait)
    comparison = drift.compare(expected, actual)
    return Result(
        comparison=comparison,
        replayed=recorded.migrations,
        shadow=place.description,
        notes=notes + comparison.notes,
        seconds=time.monotonic() - started,
    )


def _span(recorded: catalog.Catalog) -> str:
    if not len(recorded):
        return "no migrations (none recorded)"
    first, last = recorded.migrations[0], recorded.migrations[-1]
    count = len(recorded)
    return f"{count} recorded migration{'s' if count > 1 else ''} ({first.version}..{last.version})"
