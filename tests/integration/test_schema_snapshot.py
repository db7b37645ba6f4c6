"""migrations/schema.sql: `invoke schema --check` passes on the committed file and fails when
a migration is added without regenerating it; `invoke schema` writes the same bytes twice."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from alumdb import catalog
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS, migration_sql

pytestmark = [pytest.mark.docker, pytest.mark.slow]

Invoke = Callable[..., subprocess.CompletedProcess[str]]


def test_committed_snapshot_is_current(run_invoke: Invoke, pg_server: PgServer) -> None:
    del pg_server  # the image and compose are ready once the session server is up
    result = run_invoke("schema", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "schema.sql: up to date" in result.stdout


def test_new_migration_makes_the_snapshot_stale_until_regenerated(
    run_invoke: Invoke, pg_server: PgServer, tmp_path: Path
) -> None:
    del pg_server
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    version = catalog.format_version(catalog.load(folder).highest + 1)
    (folder / f"{version}_contact_notes.sql").write_text(
        migration_sql(
            version,
            "contact_notes",
            "CREATE TABLE IF NOT EXISTS contact_notes (id BIGINT, body TEXT, "
            "CONSTRAINT pk_contact_notes PRIMARY KEY (id));",
        ),
        encoding="utf-8",
    )
    stale = run_invoke("schema", "--check", "--migrations", str(folder))
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "schema.sql is stale" in stale.stderr and "run `invoke schema`" in stale.stderr
    assert (folder / "schema.sql").read_bytes() == (MIGRATIONS / "schema.sql").read_bytes()

    first = run_invoke("schema", "--migrations", str(folder))
    assert first.returncode == 0, first.stderr
    assert "schema.sql: written" in first.stdout
    written = (folder / "schema.sql").read_bytes()
    assert b"CREATE TABLE public.contact_notes" in written
    assert f"applied (001..{version})".encode() in written
    second = run_invoke("schema", "--migrations", str(folder))
    assert second.returncode == 0, second.stderr
    assert "schema.sql: already up to date" in second.stdout
    assert (folder / "schema.sql").read_bytes() == written  # identical bytes, run after run
    assert b"\\restrict" not in written and b"Dumped from database version" not in written
