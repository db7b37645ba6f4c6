"""The spec's commands, run verbatim (migrations/README.md is an acceptance test).

They address the container by its fixed name, alumoutreach-postgres, so this test runs
in a copy of the project under its own compose project and host port, holds a file
lock so that two test sessions on one machine take turns, and refuses to run beside a
developer's own alumoutreach-postgres.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from alumdb import environment
from tests.conftest import IN_CI, PgServer
from tests.helpers import MIGRATIONS, ROOT

pytestmark = pytest.mark.docker

START_POSTGRES = "docker compose -f docker-compose.dev.yml up postgres -d"
RUN_MIGRATIONS = "docker compose -f docker-compose.dev.yml run --rm migrations"
STATUS_QUERY = (
    "docker exec alumoutreach-postgres psql -U alumoutreach -d alumoutreach \\\n"
    '  -c "SELECT version, name, executed_at FROM schema_migrations ORDER BY version;"'
)
CONTAINER = "alumoutreach-postgres"
LOCK = Path("/tmp/alumdb-spec-commands.lock")  # noqa: S108 - shared on purpose, per machine


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command line exactly as the spec prints it, through a shell."""
    return subprocess.run(  # noqa: S602 - the spec's command lines, verbatim
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


@pytest.fixture
def spec_project(tmp_path: Path, pg_server: PgServer) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the compose file and migrations/, with the container's default name."""
    del pg_server  # the image and compose plugin are ready once the session server is up
    project = tmp_path / "alumoutreach"
    project.mkdir()
    shutil.copy(ROOT / "docker-compose.dev.yml", project)
    shutil.copytree(MIGRATIONS, project / "migrations")
    settings = environment.scratch_settings("alumdbspec")
    unset = {"POSTGRES_CONTAINER_NAME", "POSTGRES_PASSWORD", "DATABASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["COMPOSE_PROJECT_NAME"] = settings["COMPOSE_PROJECT_NAME"]
    env["POSTGRES_PORT"] = settings["POSTGRES_PORT"]
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            docker.from_env().containers.get(CONTAINER)
        except docker.errors.NotFound:
            pass
        else:
            message = f"a container named {CONTAINER} exists (a developer's own?); remove it"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        try:
            yield project, env
        finally:
            shell("docker compose -f docker-compose.dev.yml down -v", project, env)


def status_rows(project: Path, env: dict[str, str]) -> list[list[str]]:
    result = shell(STATUS_QUERY, project, env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["version", "name", "executed_at"]
    return [[c.strip() for c in line.split("|")] for line in lines[2:] if "|" in line]


def test_spec_commands_verbatim(spec_project: tuple[Path, dict[str, str]]) -> None:
    project, env = spec_project
    expected = [p.stem.split("_", 1) for p in sorted(MIGRATIONS.glob("[0-9]*.sql"))]

    started = shell(START_POSTGRES, project, env)  # the spec's prerequisite
    assert started.returncode == 0, started.stderr
    first = shell(RUN_MIGRATIONS, project, env)  # waits until postgres is healthy
    assert first.returncode == 0, first.stdout + first.stderr
    assert "all migrations applied" in first.stdout
    rows = status_rows(project, env)
    assert [row[:2] for row in rows] == expected
    assert all(row[2] for row in rows)  # executed_at is set

    # Idempotent: the loop runs every file again, and nothing changes.
    second = shell(RUN_MIGRATIONS, project, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert status_rows(project, env) == rows


def test_spec_loop_fails_fast_with_non_zero_exit(
    spec_project: tuple[Path, dict[str, str]],
) -> None:
    project, env = spec_project
    broken = project / "migrations" / "999_broken.sql"
    broken.write_text("CREATE TABLE IF NOT EXISTS spec_broken (id int);\nSELECT 1/0;\n")
    result = shell(RUN_MIGRATIONS, project, env)
    assert result.returncode != 0
    assert "division by zero" in result.stderr
    assert "all migrations applied" not in result.stdout
    check = shell(
        f"docker exec {CONTAINER} psql -U alumoutreach -d alumoutreach -tAc "
        "\"SELECT to_regclass('spec_broken') IS NULL\"",
        project,
        env,
    )
    assert check.stdout.strip() == "t"  # the failed file left nothing (psql -1)
