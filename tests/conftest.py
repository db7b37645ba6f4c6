"""Test harness: a real PostgreSQL 15 in a real compose project, isolated per test session.

The session brings up docker-compose.dev.yml under its own compose project name,
container name, host port and password (so tests never touch a developer's dev
database), hands each test a fresh database, and tears everything down, volumes
included, even when tests fail. The image comes from scripts/prepare_docker.py's
logic: the configured image if present or pullable, else a stand-in built from
Debian's packages.

Tests that need Docker are marked ``docker``. Without an engine they skip, except
under ``CI=true``, where they fail.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alumdb import catalog, environment, runner
from alumdb import schema_dump as dumping
from alumdb.errors import AlumdbError
from tests.helpers import MIGRATIONS, ROOT
from tools import provision

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def docker_unavailable(reason: str, what: str = "Docker") -> None:
    """Skip (locally) or fail (CI) a test that needs Docker (or ``what`` it provides)."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true: {reason}")
    pytest.skip(f"{what} is not available: {reason}")


@dataclass(frozen=True)
class PgServer:
    """The session's PostgreSQL: its compose environment, container and admin credentials."""

    env: environment.Environment
    endpoint: environment.Endpoint
    environ: dict[str, str]  # the variables that address this compose project

    @property
    def container(self) -> str:
        return self.endpoint.container

    @property
    def password(self) -> str:
        return self.endpoint.password

    def url(self, dbname: str | None = None) -> str:
        e = self.endpoint
        return f"postgresql://{e.user}:{e.password}@{e.host}:{e.port}/{dbname or e.dbname}"

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def exec(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside the postgres container (psql, pg_dump: no host client)."""
        return subprocess.run(
            ["docker", "exec", "-i", self.container, *args],
            input=stdin,
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        client = environment.docker_client()
        provision.ensure_image(client)
        provision.ensure_compose_plugin()
    except AlumdbError as exc:
        docker_unavailable(str(exc))
    environ = environment.scratch_settings("alumdbtest")
    env = environment.resolve("dev", ROOT, environ)
    try:
        up = environment.up(env, client, timeout=90)
        yield PgServer(env=env, endpoint=up.endpoint, environ=environ)
    finally:
        environment.down(env, volumes=True)


POOL_SIZE = 3  # server sessions the pooler shares among all its clients


@dataclass(frozen=True)
class Pooler:
    """PgBouncer in transaction mode in front of the session's PostgreSQL."""

    host: str
    port: int
    container: str

    def url(self, direct_url: str) -> str:
        """``direct_url`` (a database of the session's server) by way of the pooler."""
        return psycopg.conninfo.make_conninfo(direct_url, host=self.host, port=self.port)


@pytest.fixture(scope="session")
def pooler(pg_server: PgServer) -> Iterator[Pooler]:
    """PgBouncer (:data:`POOL_SIZE` server sessions, transaction mode) on the compose network.

    Built from Debian's packages like the stand-in (``provision.ensure_pooler_image``);
    removed before the compose project, whose network it joins.
    """
    try:
        client = environment.docker_client()
    except AlumdbError as exc:
        docker_unavailable(str(exc))
    try:
        provision.ensure_pooler_image(client)
    except AlumdbError as exc:
        docker_unavailable(str(exc), what="the PgBouncer image")
    port = environment.free_port()
    container = client.containers.run(
        provision.POOLER_IMAGE,
        detach=True,
        name=f"{pg_server.env.project}-pooler",
        network=f"{pg_server.env.project}_default",
        environment={
            "POOLER_UPSTREAM_HOST": environment.SERVICE,
            "POOLER_USER": pg_server.endpoint.user,
            "POOLER_PASSWORD": pg_server.password,
            "POOLER_POOL_SIZE": str(POOL_SIZE),
        },
        ports={"6432/tcp": ("127.0.0.1", port)},
    )
    try:
        found = Pooler(host="127.0.0.1", port=port, container=container.name or container.id)
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(found.url(pg_server.url()), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    logs = container.logs(tail=10).decode(errors="replace")
                    pytest.fail(f"PgBouncer did not accept connections within 30s: {exc}\n{logs}")
                time.sleep(0.1)
        yield found
    finally:
        container.remove(force=True)


@pytest.fixture
def fresh_db(pg_server: PgServer) -> Iterator[str]:
    """The URL of a new, empty database (dropped after the test)."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(scope="session")
def migrations_dir() -> Path:
    return MIGRATIONS


@pytest.fixture
def migrated_db(fresh_db: str) -> str:
    """The URL of a new database with every file of migrations/ applied by the runner."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, catalog.load(MIGRATIONS))
    return fresh_db


def _dbname(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])


@pytest.fixture
def apply_files(pg_server: PgServer) -> Callable[[str, list[Path]], None]:
    """Run files the way the compose loop does: psql, one transaction each (none for a
    ``-- alumdb:no-transaction`` file), stop on error."""

    def apply(url: str, paths: list[Path]) -> None:
        for path in paths:
            data = path.read_bytes()
            marked = data.split(b"\n", 1)[0].startswith(catalog.NO_TRANSACTION_DIRECTIVE.encode())
            single = [] if marked else ["-1"]
            result = pg_server.exec(
                "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *single,
                "-U", pg_server.endpoint.user, "-d", _dbname(url), "-f", "-",
                stdin=data,
            )  # fmt: skip
            if result.returncode != 0:
                raise AssertionError(f"{path.name}: {result.stderr.decode().strip()}")

    return apply


@pytest.fixture
def schema_dump(pg_server: PgServer) -> Callable[[str], str]:
    """``pg_dump --schema-only`` of a database, run inside the container (the engine's own)."""
    client = environment.docker_client()

    def dump(url: str) -> str:
        return dumping.dump(client, dataclasses.replace(pg_server.endpoint, dbname=_dbname(url)))

    return dump


@pytest.fixture
def run_invoke(pg_server: PgServer) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``invoke`` as a person would, in this session's compose project."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        environ.update(pg_server.environ)
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def alumdb_server(pg_server: PgServer) -> Any:
    """The alumdb pytest plugin's server is this session's PostgreSQL (no second one)."""
    from alumdb.pytest_plugin import Server

    return Server(psycopg.conninfo.conninfo_to_dict(pg_server.url()))
