"""invoke migrate / status / new-migration as a person runs them, against real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PgServer
from tests.helpers import MIGRATIONS, db_state, folder_snapshot, migration_sql, write_folder

pytestmark = pytest.mark.docker

Invoke = Callable[..., subprocess.CompletedProcess[str]]
FILES = sorted(p.name for p in MIGRATIONS.glob("[0-9]*.sql"))


def status_json(run_invoke: Invoke, *args: str) -> dict[str, object]:
    result = run_invoke("status", "--json", *args)
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def states(document: dict[str, object]) -> dict[str, str]:
    rows = document["migrations"]
    assert isinstance(rows, list)
    return {str(row["version"]): str(row["state"]) for row in rows}


def test_compose_environment_dry_run_migrate_noop_and_status(
    run_invoke: Invoke, pg_server: PgServer
) -> None:
    """The default target: the session's compose environment (its own project and port)."""
    before = status_json(run_invoke)
    assert set(states(before).values()) == {"pending"}
    assert len(states(before)) == len(FILES)
    state_before = db_state(pg_server.url())

    dry = run_invoke("migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for name in FILES:
        assert f"would apply {name}" in dry.stdout
    assert f"dry run: {len(FILES)} to apply; nothing was changed" in dry.stdout
    assert db_state(pg_server.url()) == state_before

    first = run_invoke("migrate")
    assert first.returncode == 0, first.stderr
    applied_lines = [line for line in first.stdout.splitlines() if "applied   " in line]
    assert [line.split()[1] for line in applied_lines] == FILES  # in numeric order
    assert all(line.rstrip().endswith("ms") for line in applied_lines)
    assert f"done: {len(FILES)} applied" in first.stdout
    assert pg_server.password not in first.stdout + first.stderr

    again = run_invoke("migrate")
    assert again.returncode == 0, again.stderr
    assert f"nothing to do: {len(FILES)} applied" in again.stdout

    after = status_json(run_invoke)
    assert set(states(after).values()) == {"applied"}
    assert after["ok"] is True
    assert after["summary"] == {"applied": len(FILES), "pending": 0, "changed": 0, "missing": 0}

    table = run_invoke("status")
    assert table.returncode == 0, table.stderr
    assert f"{len(FILES)} applied, 0 pending, 0 changed, 0 missing" in table.stdout


def test_target_stops_after_the_version(run_invoke: Invoke, fresh_db: str) -> None:
    result = run_invoke("migrate", "--database-url", fresh_db, "--target", "005")
    assert result.returncode == 0, result.stderr
    assert "done: 5 applied" in result.stdout
    found = states(status_json(run_invoke, "--database-url", fresh_db))
    assert [v for v, s in found.items() if s == "applied"] == ["001", "002", "003", "004", "005"]
    assert all(s == "pending" for v, s in found.items() if int(v) > 5)


def test_database_url_needs_no_docker(run_invoke: Invoke, fresh_db: str, tmp_path: Path) -> None:
    """With --database-url the engine is never asked: a dead DOCKER_HOST does not matter."""
    dead = {"DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"}
    result = run_invoke("migrate", "--database-url", fresh_db, env=dead)
    assert result.returncode == 0, result.stderr
    assert f"done: {len(FILES)} applied" in result.stdout
    via_env = run_invoke("status", env={**dead, "DATABASE_URL": fresh_db})
    assert via_env.returncode == 0, via_env.stderr
    assert "***" in via_env.stdout  # the URL is shown, its password redacted
    assert fresh_db not in via_env.stdout


def test_failing_file_rolls_back_completely(
    run_invoke: Invoke, fresh_db: str, tmp_path: Path
) -> None:
    folder = write_folder(
        tmp_path / "migrations",
        {
            "002_good.sql": migration_sql(
                "002", "good", "CREATE TABLE IF NOT EXISTS good (id int);"
            ),
            "003_bad.sql": migration_sql(
                "003",
                "bad",
                "CREATE TABLE IF NOT EXISTS half_done (id int);\n"
                "CREATE INDEX IF NOT EXISTS idx_half_done ON half_done (id);\n"
                "ALTER TABLE half_done ADD COLUMN IF NOT EXISTS note text;\n"
                "SELECT no_such_column FROM half_done;",
            ),
        },
    )
    result = run_invoke("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    assert result.returncode == 7, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()
    assert error[0].startswith('error: 003_bad.sql:9:8: column "no_such_column" does not exist')
    assert "SQLSTATE 42703" in error[0]
    relations, rows = db_state(fresh_db)
    assert "good" in relations  # earlier files stay applied
    assert "half_done" not in relations and "idx_half_done" not in relations
    assert [v for v, _ in rows] == ["001", "002"]  # and no record of the failed file


def test_changed_applied_file_is_refused(run_invoke: Invoke, fresh_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    first = run_invoke("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    assert first.returncode == 0, first.stderr
    edited = folder / "003_auth.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    before = db_state(fresh_db)

    result = run_invoke("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    assert result.returncode == 6
    assert "003_auth.sql" in result.stderr and "changed" in result.stderr
    assert "nothing was run" in result.stderr
    assert db_state(fresh_db) == before

    status = run_invoke("status", "--database-url", fresh_db, "--migrations", str(folder))
    assert status.returncode == 6
    assert "changed" in status.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "NAME is empty"),
        ("AddNotes", "is not snake_case"),
        ("two words", "is not snake_case"),
        ("../x", "is not snake_case"),
        ("a;b", "is not snake_case"),
        ("contacts", "is already used by 004_contacts.sql"),
    ],
)
def test_new_migration_refusals_write_nothing(
    run_invoke: Invoke, tmp_path: Path, name: str, expected: str
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    before = folder_snapshot(folder)
    result = run_invoke("new-migration", name, "--migrations", str(folder))
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert folder_snapshot(folder) == before
    assert not (tmp_path / "x.sql").exists()


def test_new_migration_writes_the_next_file(run_invoke: Invoke, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    result = run_invoke("new-migration", "add_contact_notes", "--migrations", str(folder))
    assert result.returncode == 0, result.stderr
    number = max(int(name.split("_", 1)[0]) for name in FILES) + 1  # after the highest
    created = folder / f"{number:03d}_add_contact_notes.sql"
    assert result.stdout.strip() == str(created)
    text = created.read_text()
    assert f"-- Migration: {number:03d}_add_contact_notes.sql" in text
    assert f"VALUES ('{number:03d}', 'add_contact_notes')" in text


def test_spec_loop_and_invoke_leave_the_same_schema(
    pg_server: PgServer,
    migrated_db: str,
    apply_files: Callable[[str, list[Path]], None],
    schema_dump: Callable[[str], str],
    run_invoke: Invoke,
) -> None:
    """psql per file in order (the compose loop) vs the runner: same dump, same rows."""
    looped = pg_server.url(pg_server.create_database())
    try:
        apply_files(looped, sorted(MIGRATIONS.glob("[0-9]*.sql")))
        assert schema_dump(looped) == schema_dump(migrated_db)
        with psycopg.connect(looped) as a, psycopg.connect(migrated_db) as b:
            query = "SELECT version, name FROM schema_migrations ORDER BY version"
            assert a.execute(query).fetchall() == b.execute(query).fetchall()
            unverified = "SELECT count(*) FROM schema_migrations WHERE checksum IS NULL"
            assert a.execute(unverified).fetchone() == (len(FILES),)
        adopted = run_invoke("migrate", "--database-url", looped)
        assert adopted.returncode == 0, adopted.stderr
        assert f"adopted {len(FILES)} applied without a checksum" in adopted.stdout
        assert f"nothing to do: {len(FILES)} applied" in adopted.stdout
        status = status_json(run_invoke, "--database-url", looped)
        assert set(states(status).values()) == {"applied"}
        with psycopg.connect(looped) as a, psycopg.connect(migrated_db) as b:
            query = "SELECT version, checksum FROM schema_migrations ORDER BY version"
            assert a.execute(query).fetchall() == b.execute(query).fetchall()
    finally:
        pg_server.drop_database(str(psycopg.conninfo.conninfo_to_dict(looped)["dbname"]))


def test_new_migration_refuses_a_purpose_with_a_line_break(
    run_invoke: Invoke, tmp_path: Path
) -> None:
    """A --purpose with a newline would put its second line outside the header comment,
    as live SQL: refused (exit 2), nothing written. Before: the file was written."""
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    before = folder_snapshot(folder)
    purpose = "Notes\nDROP TABLE contacts;"
    result = run_invoke(
        "new-migration", "add_notes", "--purpose", purpose, "--migrations", str(folder)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--purpose" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert folder_snapshot(folder) == before
