"""The environment tasks end to end, in a compose project of their own:
up, psql (also as a tenant), logs, down (data kept), reset (dev only, asks first)."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from alumdb import catalog, environment
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS, ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

Invoke = Callable[..., subprocess.CompletedProcess[str]]
COUNT = len(catalog.load(MIGRATIONS))
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def scratch(pg_server: PgServer) -> Iterator[dict[str, str]]:
    """Variables for a second compose project, shared by this module's tests (which run
    in order: up first); removed with its volume afterwards."""
    del pg_server  # the image and compose are ready once the session server is up
    settings = environment.scratch_settings("alumdbtasks")
    try:
        yield settings
    finally:
        environment.down(environment.resolve("dev", ROOT, settings), volumes=True)


@pytest.fixture
def run(run_invoke: Invoke, scratch: dict[str, str]) -> Invoke:
    """``invoke ARGS`` against the module's compose project."""

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        return run_invoke(*args, env=scratch)

    return invoke


def test_up_starts_then_finds_it_running(run: Invoke, scratch: dict[str, str]) -> None:
    container = scratch["POSTGRES_CONTAINER_NAME"]
    up = run("up")
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("postgres started, ready in ")
    assert (
        f"container {container}, listening on postgresql://alumoutreach:***@127.0.0.1:" in up.stdout
    )
    assert scratch["POSTGRES_PASSWORD"] not in up.stdout

    again = run("up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"postgres running: container {container}")


def test_psql_and_logs(run: Invoke) -> None:
    assert run("up").returncode == 0
    psql = run("psql", "--command", "SELECT 40 + 2 AS answer")
    assert psql.returncode == 0, psql.stderr
    assert "answer" in psql.stdout and "42" in psql.stdout

    logs = run("logs", "--tail", "20")
    assert logs.returncode == 0, logs.stderr
    assert "database system is ready to accept connections" in logs.stdout


def test_psql_as_a_tenant_sees_what_the_application_sees(run: Invoke) -> None:
    """``psql --tenant`` is a session as alumoutreach_app under 012's row-level security."""
    assert run("migrate").returncode == 0
    made = run("psql", "--command", "INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme')"
               " RETURNING id")  # fmt: skip
    assert made.returncode == 0, made.stderr
    tenant = UUID.search(made.stdout)
    assert tenant is not None, made.stdout
    sees = "SELECT current_user AS who, count(*) AS visible FROM tenants"
    own = run("psql", "--tenant", tenant.group(), "--command", sees)
    assert own.returncode == 0, own.stderr
    assert re.search(r"alumoutreach_app\s*\|\s*1\b", own.stdout), own.stdout
    other = run("psql", "--tenant", str(uuid.uuid4()), "--command", sees)
    assert re.search(r"alumoutreach_app\s*\|\s*0\b", other.stdout), other.stdout
    bad = run("psql", "--tenant", "acme", "--command", sees)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --tenant 'acme': not a UUID; pass the tenant's id (tenants.id), e.g. --tenant "
        "123e4567-e89b-12d3-a456-426614174000"
    ]


def test_down_keeps_the_data(run: Invoke) -> None:
    assert run("up").returncode == 0
    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"{COUNT} applied" in migrated.stdout

    down = run("down")
    assert down.returncode == 0, down.stderr
    assert "data kept" in down.stdout
    status = run("status")  # status never starts the database
    assert status.returncode == 4
    assert "is not running" in status.stderr and "invoke up" in status.stderr
    assert run("up").returncode == 0
    kept = run("migrate")
    assert f"nothing to do: {COUNT} applied" in kept.stdout  # the volume survived down


def test_reset_is_dev_only_asks_first_then_starts_from_scratch(run: Invoke) -> None:
    assert run("migrate").returncode == 0
    prod = run("reset", "--yes", "--env", "prod")
    assert prod.returncode == 2
    assert "allowed for dev only" in prod.stderr
    unconfirmed = run("reset")  # no terminal to ask on: refuse rather than guess
    assert unconfirmed.returncode == 2
    assert "pass --yes" in unconfirmed.stderr
    assert f"nothing to do: {COUNT} applied" in run("migrate").stdout

    reset = run("reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert "and its volume" in reset.stdout
    assert f"done: {COUNT} applied" in reset.stdout  # from scratch
