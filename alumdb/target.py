"""Which database a task talks to: a compose environment (dev, prod) or a URL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from alumdb import database, environment
from alumdb.errors import UsageError

DEFAULT_WAIT = environment.DEFAULT_HEALTH_TIMEOUT  # seconds: --wait of migrate, up, erd


@dataclass(frozen=True)
class Target:
    """A compose environment, or connection parameters from a URL (no Docker needed)."""

    env: environment.Environment | None
    params: database.Conninfo | None

    def describe(self) -> str:
        if self.env is not None:
            return f"{self.env.name} environment ({self.env.compose_file.name})"
        assert self.params is not None  # noqa: S101 - one of the two is set
        return database.redact(self.params)


def resolve(project_dir: Path, env_name: str | None, database_url: str | None) -> Target:
    """``--database-url`` (or ``DATABASE_URL``) wins unless ``--env`` is given explicitly."""
    if database_url is not None and env_name is not None:
        raise UsageError("pass either --env or --database-url, not both")
    if database_url is not None:
        return Target(None, database.parse_url(database_url))
    if env_name is None:
        from_env = environment.setting("DATABASE_URL", project_dir)
        if from_env:
            return Target(None, database.parse_url(from_env, what="DATABASE_URL"))
        env_name = "dev"
    return Target(environment.resolve(env_name, project_dir), None)


@dataclass(frozen=True)
class Connected:
    conn: psycopg.Connection[Any]
    where: str  # redacted DSN
    up: environment.UpResult | None


def connect(
    target: Target,
    *,
    start: bool,
    wait: float = DEFAULT_WAIT,
    on_starting: Callable[[str], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    application_name: str = database.APPLICATION_NAME,
) -> Connected:
    """Open a connection to ``target``.

    For a compose environment, ``start`` brings it up (compose up, health wait) first;
    without it, the environment must already be running. For a URL, ``wait`` is how
    long to wait for the server to accept connections.
    """
    if target.params is not None:
        conn = database.connect(
            target.params, wait=wait, on_wait=on_wait, application_name=application_name
        )
        return Connected(conn, database.redact(target.params), None)
    env = target.env
    assert env is not None  # noqa: S101 - one of the two is set
    client = environment.docker_client()
    up: environment.UpResult | None = None
    if start:
        if on_starting is not None:
            on_starting(env.describe())
        up = environment.up(env, client, timeout=wait, probe=lambda e: database.probe(e.conninfo()))
        point = up.endpoint
    else:
        point = environment.running_endpoint(env, client)
    params = point.conninfo()
    conn = database.connect(params, wait=wait, application_name=application_name)
    return Connected(conn, database.redact(params), up)
