"""Each file starts from the session a fresh psql would give it (the spec's loop).

The runner sends many files through one session; whatever a file does to its
session (search_path, SET ROLE, a GUC, a temporary table) must not reach the next
file or the runner's bookkeeping. The proof is the spec's own semantics: the same
folder applied by the compose loop's psql-per-file leaves the same schema.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from alumdb import catalog, runner
from alumdb import status as status_mod
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS, migration_sql

pytestmark = pytest.mark.docker

Dump = Callable[[str], str]
Apply = Callable[[str, list[Path]], None]
Invoke = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def role(pg_server: PgServer) -> Iterator[str]:
    """A role the files switch to with SET ROLE (roles are cluster-wide: dropped after)."""
    name = f"mig_{uuid.uuid4().hex[:8]}"
    with pg_server.admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    yield name
    with pg_server.admin() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
        databases = [str(r[0]) for r in rows]
    for database in databases:
        with psycopg.connect(pg_server.url(database), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    with pg_server.admin() as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


# Numbers for the two fixture files, after the real migrations.
CHANGES, AFTER = (catalog.format_version(catalog.load(MIGRATIONS).highest + n) for n in (1, 2))


def session_changing_folder(directory: Path, role: str) -> Path:
    """migrations/ plus CHANGES, which changes its session every way, and AFTER, which
    would go wrong if any of it reached it."""
    directory.mkdir()
    for path in catalog.migration_paths(MIGRATIONS):
        (directory / path.name).write_bytes(path.read_bytes())
    changes = f"""
CREATE SCHEMA IF NOT EXISTS other;
GRANT USAGE, CREATE ON SCHEMA public, other TO {role};
GRANT SELECT, INSERT ON schema_migrations TO {role};
SET search_path TO other, public;
CREATE TABLE IF NOT EXISTS in_other (id int);
SET ROLE {role};
CREATE TABLE IF NOT EXISTS public.owned_by_role (id int);
CREATE TEMP TABLE scratch (id int);
SET default_transaction_read_only = on;
"""
    (directory / f"{CHANGES}_session.sql").write_text(
        migration_sql(CHANGES, "session", changes).replace(
            "INSERT INTO schema_migrations", "INSERT INTO public.schema_migrations"
        )
    )
    after = """
CREATE TABLE IF NOT EXISTS after_session (id int);
CREATE TABLE IF NOT EXISTS scratch (id int);
CREATE INDEX IF NOT EXISTS ix_scratch_id ON scratch (id);
SELECT pg_sleep(0.01);
"""
    (directory / f"{AFTER}_after_session.sql").write_text(
        migration_sql(AFTER, "after_session", after)
    )
    return directory


def owners(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('public', 'other') ORDER BY 1, 2"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_runner_and_spec_loop_agree_when_files_change_their_session(  # noqa: PLR0917
    pg_server: PgServer,
    fresh_db: str,
    tmp_path: Path,
    role: str,
    apply_files: Apply,
    schema_dump: Dump,
    run_invoke: Invoke,
) -> None:
    """pg_dump --schema-only (and every relation's owner) of a database migrated by
    `invoke migrate` equals that of the spec's psql-per-file loop, for a folder whose CHANGES
    file sets search_path, SET ROLE, a temporary table, and default_transaction_read_only.
    Before the fix, the AFTER file created its tables in ``other``, owned by the
    role, recorded itself in other.schema_migrations, and indexed the temp table."""
    folder = session_changing_folder(tmp_path / "migrations", role)
    loop_db = fresh_db
    runner_db = pg_server.url(pg_server.create_database())
    try:
        apply_files(loop_db, [m.path for m in catalog.load(folder)])
        result = run_invoke("migrate", "--database-url", runner_db, "--migrations", str(folder))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"applied   {AFTER}_after_session.sql" in result.stdout
        assert "WARNING" not in result.stdout  # the runner's own framing draws none
        assert schema_dump(runner_db) == schema_dump(loop_db)
        assert owners(runner_db) == owners(loop_db)
        with psycopg.connect(runner_db, autocommit=True) as conn:
            entries = runner.read_status(conn, catalog.load(folder))
        assert {e.state for e in entries} == {"applied"}, status_mod.problems(entries)
    finally:
        pg_server.drop_database(str(psycopg.conninfo.conninfo_to_dict(runner_db)["dbname"]))


@pytest.mark.parametrize("transactional", [True, False], ids=["transaction", "no-transaction"])
def test_next_file_and_bookkeeping_see_a_fresh_session(
    fresh_db: str, tmp_path: Path, role: str, transactional: bool
) -> None:
    """After a file that sets search_path and a role (also a no-transaction file), the
    next file's objects land in public, owned by the login user, and every file is
    recorded in public.schema_migrations."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_init.sql").write_bytes((MIGRATIONS / "001_init.sql").read_bytes())
    head = "" if transactional else "-- alumdb:no-transaction\n"
    (folder / "002_switch.sql").write_text(
        head
        + migration_sql(
            "002",
            "switch",
            f"CREATE SCHEMA IF NOT EXISTS other;\nGRANT ALL ON SCHEMA public, other TO {role};\n"
            f"GRANT SELECT, INSERT ON schema_migrations TO {role};\n"
            f"SET search_path TO other, public;\nSET ROLE {role};",
        ).replace("INSERT INTO schema_migrations", "INSERT INTO public.schema_migrations")
    )
    (folder / "003_next.sql").write_text(
        migration_sql("003", "next", "CREATE TABLE IF NOT EXISTS next_one (id int);")
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, catalog.load(folder))
        row = conn.execute(
            "SELECT n.nspname, pg_get_userbyid(c.relowner) = current_user FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'next_one'"
        ).fetchone()
        versions = conn.execute(
            "SELECT version::text FROM public.schema_migrations ORDER BY 1"
        ).fetchall()
        stray = conn.execute("SELECT to_regclass('other.schema_migrations')").fetchone()
    assert row == ("public", True)
    assert [v[0] for v in versions] == ["001", "002", "003"]
    assert stray == (None,)
