"""Dev and prod on one host never touch each other's data.

docker-compose.dev.yml runs as compose project ``alumoutreach-dev`` with volume key
``pgdata-dev``; docker-compose.prod.yml keeps the directory's project and ``pgdata``.
The tests run in a copy of the project under scratch project names, container names
and ports (never the machine's real alumoutreach-postgres).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import psycopg
import pytest

from alumdb import environment
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS, ROOT

pytestmark = pytest.mark.docker
FILES = {"dev": "docker-compose.dev.yml", "prod": "docker-compose.prod.yml"}


def _config(file: str, environ: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [*environment.compose_command(), "-f", file, "config", "--format", "json"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("shared", [None, "oneproject"])
def test_the_files_resolve_to_different_projects_and_volumes(
    pg_server: PgServer, shared: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As compose itself reads the files, with and without a COMPOSE_PROJECT_NAME they share;
    the engine resolves the same project names."""
    del pg_server  # the compose plugin is ready
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    environ = dict(os.environ)
    environ["POSTGRES_PASSWORD"] = "only-to-render-the-prod-file"
    if shared:
        environ["COMPOSE_PROJECT_NAME"] = shared
    dev, prod = (_config(FILES[e], environ) for e in ("dev", "prod"))
    volumes = [
        {v["name"] for v in doc["volumes"].values()}  # type: ignore[attr-defined]
        for doc in (dev, prod)
    ]
    assert volumes[0].isdisjoint(volumes[1]), volumes
    if not shared:
        assert dev["name"] == "alumoutreach-dev"
        assert prod["name"] != dev["name"]
    extra = {"COMPOSE_PROJECT_NAME": shared} if shared else {}
    for name, doc in (("dev", dev), ("prod", prod)):
        assert environment.resolve(name, ROOT, extra).project == doc["name"]


@pytest.fixture
def two_environments(
    tmp_path: Path, pg_server: PgServer
) -> Iterator[dict[str, environment.Environment]]:
    """A copy of the project with dev and prod settings of its own; both removed after."""
    del pg_server
    project = tmp_path / f"iso{secrets.token_hex(3)}"
    project.mkdir()
    for file in FILES.values():
        shutil.copy(ROOT / file, project)
    shutil.copytree(MIGRATIONS, project / "migrations")
    shared = environment.scratch_settings("alumdbiso")["COMPOSE_PROJECT_NAME"]
    envs: dict[str, environment.Environment] = {}
    for name in FILES:
        settings = environment.scratch_settings("alumdbiso")
        # The worst case: one COMPOSE_PROJECT_NAME for both files (a shared .env).
        settings["COMPOSE_PROJECT_NAME"] = shared
        envs[name] = environment.resolve(name, project, settings)
    try:
        yield envs
    finally:
        for env in envs.values():
            environment.down(env, volumes=True)


def _marker(endpoint: environment.Endpoint) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(**endpoint.conninfo(), autocommit=True, connect_timeout=10)


@pytest.mark.slow
def test_prod_down_v_leaves_the_dev_volume_alone(
    two_environments: dict[str, environment.Environment],
) -> None:
    dev, prod = two_environments["dev"], two_environments["prod"]
    assert dev.project == prod.project  # the worst case: one project for both files
    client = environment.docker_client()
    up = environment.up(dev, client, timeout=90)
    with _marker(up.endpoint) as conn:
        conn.execute("CREATE TABLE dev_only_marker (note text)")
        conn.execute("INSERT INTO dev_only_marker VALUES ('dev data')")

    # The sequence: prod's migrations start (on prod's own volume, with prod's
    # password), then prod is torn down with its volumes.
    environment.compose(prod, "run", "--rm", "migrations", what="prod migrations")
    environment.down(prod, volumes=True)

    volumes = {v.name for v in client.volumes.list()}
    assert f"{dev.project}_pgdata-dev" in volumes
    assert f"{prod.project}_pgdata" not in volumes
    up = environment.up(dev, client, timeout=90)
    with _marker(up.endpoint) as conn:
        rows = conn.execute("SELECT note FROM dev_only_marker").fetchall()
    assert rows == [("dev data",)]
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get(f"{prod.project}_pgdata")
