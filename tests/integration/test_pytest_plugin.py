"""The pytest plugin (alumdb/pytest_plugin.py): a cloned, migrated database per test.

Every check runs real inner pytest sessions as subprocesses (the plugin loads through
its ``pytest11`` entry point, as in a project that installed alumdb) against the
harness's PostgreSQL, each on its own copy of migrations/ so its template is its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alumdb import catalog, environment, testdb
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS, ROOT

NEXT = catalog.format_version(catalog.load(MIGRATIONS).highest + 1)  # after the real files

pytestmark = pytest.mark.docker

INNER_TESTS = """
import json, os
import psycopg
import pytest

def record(url, template, **extra):
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT current_database(), (SELECT count(*) FROM schema_migrations),"
            " (SELECT count(*) FROM tenants), (SELECT count(*) FROM contacts)"
        ).fetchone()
    line = {
        "db": row[0], "migrations": row[1], "tenants": row[2], "contacts": row[3],
        "template": template.name, "built": template.built,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), **extra,
    }
    with open(os.environ["ALUMDB_OUT"], "a") as out:
        out.write(json.dumps(line) + "\\n")

def test_a_writes(alumdb_url, alumdb_template):
    record(alumdb_url, alumdb_template)
    with psycopg.connect(alumdb_url) as conn:
        conn.execute("INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme')")

def test_b_sees_nothing_of_a(alumdb_url, alumdb_template):
    record(alumdb_url, alumdb_template)

def test_template_refuses_connections(alumdb_template_url):
    with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
        psycopg.connect(alumdb_template_url, connect_timeout=5)

@pytest.mark.parametrize("n", range(int(os.environ.get("ALUMDB_MORE", "0"))))
def test_more(alumdb_url, alumdb_template, n):
    record(alumdb_url, alumdb_template, n=n)
"""


def run_inner(
    pg_server: PgServer, tmp: Path, folder: Path, *args: str, more: int = 0
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """One pytest session in ``tmp`` using the plugin; returns it and its records."""
    (tmp / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp / "test_inner.py").write_text(INNER_TESTS, encoding="utf-8")
    out = tmp / "records.jsonl"
    out.unlink(missing_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ALUMDB_", "PYTEST_"))}
    environ.update(ALUMDB_OUT=str(out), ALUMDB_MORE=str(more))
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
            "--alumdb-server", pg_server.url(), "--alumdb-migrations", str(folder), *args,
        ],
        cwd=tmp,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
    return result, [json.loads(line) for line in lines]


def databases(pg_server: PgServer, prefix: str) -> dict[str, tuple[int, bool, bool]]:
    """name -> (oid, is template, allows connections) of the server's databases."""
    with pg_server.admin() as conn:
        rows = conn.execute(
            "SELECT datname, oid::int, datistemplate, datallowconn FROM pg_database"
            " WHERE starts_with(datname, %s)",
            (prefix,),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def token(name: str) -> str:
    """The pool token in a clone's name (``alumdb_test_<token>_<n>``)."""
    return name.removeprefix(testdb.CLONE_PREFIX).split("_")[0]


def clones_left(pg_server: PgServer, records: list[dict[str, Any]]) -> list[str]:
    """Test databases still on the server from the inner sessions' pools, or from any pool
    whose session is gone (this outer session's own pool keeps its spares meanwhile)."""
    inner = {token(r["db"]) for r in records}
    with pg_server.admin() as conn:
        live = {
            str(r[0]).removeprefix(testdb.POOL_PREFIX).split(" ")[0]
            for r in conn.execute(
                "SELECT application_name FROM pg_stat_activity"
                " WHERE starts_with(application_name, %s)",
                (testdb.POOL_PREFIX,),
            )
        }
    found = databases(pg_server, testdb.CLONE_PREFIX)
    return sorted(name for name in found if token(name) in inner or token(name) not in live)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy)
    return copy


def test_fresh_database_per_test_and_template_per_folder_state(
    pg_server: PgServer, folder: Path, tmp_path: Path
) -> None:
    key = testdb.folder_key(folder)
    templates = f"{testdb.TEMPLATE_PREFIX}{key}_"
    files = len(catalog.load(folder))

    first, records = run_inner(pg_server, tmp_path, folder)
    assert first.returncode == 0, first.stdout + first.stderr
    a, b = records
    assert a["db"] != b["db"], "two tests got the same database"
    assert a["migrations"] == b["migrations"] == files, "not fully migrated"
    assert (a["tenants"], a["contacts"]) == (0, 0), "not empty"
    assert b["tenants"] == 0, "a write of test_a is visible in test_b"
    assert a["built"] and b["built"], "the first session must build the template"
    assert "built in" in first.stdout
    made = databases(pg_server, templates)
    assert list(made) == [a["template"]]
    _oid, is_template, allows = made[a["template"]]
    assert is_template and not allows
    assert clones_left(pg_server, records) == [], "a test database was left"

    # A second session on the unchanged folder builds nothing: same template, same oid.
    # (It clones when a test asks, without spares: both ways give the same databases.)
    second, records = run_inner(pg_server, tmp_path, folder, "--alumdb-spares", "0")
    assert second.returncode == 0, second.stdout + second.stderr
    assert {r["template"] for r in records} == {a["template"]}
    assert not any(r["built"] for r in records)
    assert "reused" in second.stdout
    assert databases(pg_server, templates) == made
    assert len({r["db"] for r in records}) == 2 and records[1]["tenants"] == 0
    assert clones_left(pg_server, records) == []

    # Editing a migration (even a comment) makes a new template; the old one goes.
    pipeline = folder / "011_pipeline.sql"
    pipeline.write_text(pipeline.read_text() + "\n-- edited\n", encoding="utf-8")
    (folder / f"{NEXT}_notes.sql").write_text(
        "CREATE TABLE IF NOT EXISTS notes (id BIGINT PRIMARY KEY);\n"
        f"INSERT INTO schema_migrations (version, name) VALUES ('{NEXT}', 'notes')"
        " ON CONFLICT (version) DO NOTHING;\n",
        encoding="utf-8",
    )
    third, records = run_inner(pg_server, tmp_path, folder)
    assert third.returncode == 0, third.stdout + third.stderr
    new = records[0]["template"]
    assert new != a["template"] and records[0]["built"]
    assert {r["migrations"] for r in records} == {files + 1}
    assert f"removed older template(s): {a['template']}" in third.stdout
    assert list(databases(pg_server, templates)) == [new]
    assert databases(pg_server, testdb.BUILD_PREFIX) == {}
    assert clones_left(pg_server, records) == []
    with pg_server.admin() as conn:
        testdb.drop(conn, new)


def test_xdist_workers_share_one_template_and_get_their_own_databases(
    pg_server: PgServer, folder: Path, tmp_path: Path
) -> None:
    pytest.importorskip("xdist")
    templates = f"{testdb.TEMPLATE_PREFIX}{testdb.folder_key(folder)}_"
    result, records = run_inner(pg_server, tmp_path, folder, "-n", "4", more=12)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(records) == 14
    assert len({r["worker"] for r in records}) == 4, "expected all four workers to run tests"
    assert len({r["db"] for r in records}) == 14, "two tests shared a database"
    assert all(r["tenants"] == 0 for r in records)
    built_by = {r["worker"] for r in records if r["built"]}
    assert len(built_by) == 1, f"the template was built by {built_by or 'nobody'}"
    assert len({r["template"] for r in records}) == 1
    assert len(databases(pg_server, templates)) == 1
    assert len({token(r["db"]) for r in records}) == 4, "expected a pool per worker"
    assert clones_left(pg_server, records) == []
    with pg_server.admin() as conn:
        testdb.drop(conn, records[0]["template"])


def test_failing_migration_fails_in_one_line_and_leaves_no_half_built_template(
    pg_server: PgServer, folder: Path, tmp_path: Path
) -> None:
    (folder / f"{NEXT}_broken.sql").write_text("CREATE TABLE broken (id BIGINT PRIMARY KEY;\n")
    result, records = run_inner(pg_server, tmp_path, folder)
    assert result.returncode != 0
    assert records == []
    assert f"{NEXT}_broken.sql:1" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    key = testdb.folder_key(folder)
    assert databases(pg_server, f"{testdb.TEMPLATE_PREFIX}{key}_") == {}
    assert databases(pg_server, f"{testdb.BUILD_PREFIX}{key}_") == {}


@pytest.mark.parametrize("value", ["-1", "two"])
def test_a_bad_spares_option_fails_in_one_line(
    pg_server: PgServer, folder: Path, tmp_path: Path, value: str
) -> None:
    result, records = run_inner(pg_server, tmp_path, folder, "--alumdb-spares", value)
    assert result.returncode != 0 and records == []
    assert (
        f"alumdb: --alumdb-spares: expected a whole number of databases (0 or more), "
        f"got {value!r}" in result.stdout
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_plugin_does_nothing_unless_its_fixtures_are_asked_for(tmp_path: Path) -> None:
    """Loaded in every session (this project's own too): an unreachable server is fine."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--alumdb-server", "postgresql://nobody@127.0.0.1:1/none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alumdb" not in result.stdout


OWN_SERVER_TEST = """
import psycopg

def test_on_the_plugins_own_server(alumdb_url):
    with psycopg.connect(alumdb_url) as conn:
        mounts = conn.execute("SELECT pg_read_file('/proc/self/mounts')").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] > 0
    assert "tmpfs /var/lib/postgresql/data tmpfs" in mounts
"""


def test_without_a_server_the_plugin_starts_its_own_in_memory_and_removes_it(
    tmp_path: Path,
) -> None:
    """No --alumdb-server: a compose project of the project's docker-compose.dev.yml, its
    data on tmpfs (clones in milliseconds), gone with its container after the session."""
    project = tmp_path / "crm"
    project.mkdir()
    shutil.copy(ROOT / "docker-compose.dev.yml", project / "docker-compose.dev.yml")
    shutil.copytree(MIGRATIONS, project / "migrations")
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (project / "test_own.py").write_text(OWN_SERVER_TEST, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ALUMDB_", "PYTEST_"))}
    before = _scratch_projects()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=environ, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert _scratch_projects() == before  # container, network and data all gone


def _scratch_projects() -> set[str]:
    """The plugin's own compose projects (containers, volumes, networks) on this engine."""
    client = environment.docker_client()
    label = "com.docker.compose.project"
    found = {c.labels.get(label, "") for c in client.containers.list(all=True)}
    found |= {(v.attrs.get("Labels") or {}).get(label, "") for v in client.volumes.list()}
    found |= {(n.attrs.get("Labels") or {}).get(label, "") for n in client.networks.list()}
    return {name for name in found if name.startswith("alumdbtpl")}
