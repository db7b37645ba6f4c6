"""The bench's own PostgreSQL: docker-compose.dev.yml under a compose project of its own.

Like the test harness (tests/conftest.py), the bench addresses its compose project
through COMPOSE_PROJECT_NAME, POSTGRES_CONTAINER_NAME, POSTGRES_PORT and
POSTGRES_PASSWORD, so it never touches a developer's dev database, and it removes
its containers and volume when it ends.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from alumdb import database, environment
from tools import provision

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.dev.yml"
USER = "alumoutreach"
ADMIN_DB = "alumoutreach"
# One transaction over 10,000 files holds ~15,000 relation locks (tables, indexes,
# sequences, TOAST): the default lock table (64 x 100 slots) is too small for the floor.
MAX_LOCKS_PER_TRANSACTION = 512


class BenchError(RuntimeError):
    """The bench could not do what it needs (not a contender's failure)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(no output)"


@dataclass(frozen=True)
class BenchServer:
    """The compose project the bench owns, and how to reach its PostgreSQL."""

    tag: str
    port: int
    password: str

    @classmethod
    def create(cls) -> BenchServer:
        tag = f"alumdbbench{os.getpid()}"
        server = cls(tag=tag, port=free_port(), password=f"pw-{secrets.token_hex(8)}")
        # environment.resolve() reads the project name from the process environment.
        os.environ.update(server.environ())
        os.environ.pop("DATABASE_URL", None)
        return server

    @property
    def container(self) -> str:
        return f"{self.tag}-postgres"

    def environ(self) -> dict[str, str]:
        """The variables that address this compose project."""
        return {
            "COMPOSE_PROJECT_NAME": self.tag,
            "POSTGRES_CONTAINER_NAME": self.container,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_PASSWORD": self.password,
        }

    def child_env(self, **extra: str) -> dict[str, str]:
        """A child process's environment: this project, no DATABASE_URL, plus ``extra``."""
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(self.environ())
        env.update(extra)
        return env

    def env(self) -> environment.Environment:
        return environment.resolve("dev", ROOT)

    def params(self, dbname: str = ADMIN_DB, password: bool = True) -> database.Conninfo:
        params: database.Conninfo = {
            "host": "127.0.0.1",
            "port": self.port,
            "user": USER,
            "dbname": dbname,
        }
        if password:
            params["password"] = self.password
        return params

    def url(self, dbname: str, password: bool = True, scheme: str = "postgresql") -> str:
        auth = f"{USER}:{self.password}" if password else USER
        return f"{scheme}://{auth}@127.0.0.1:{self.port}/{dbname}"

    # --- compose ---------------------------------------------------------------------

    def compose(
        self, *args: str, compose_file: Path = COMPOSE_FILE, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose -f FILE ARGS`` as a person types it, in the file's folder."""
        command = [*environment.compose_command(), "-f", str(compose_file), *args]
        result = subprocess.run(
            command,
            cwd=compose_file.parent,
            env=self.child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise BenchError(f"{' '.join(args[:2])} failed: {tail(result.stderr)}")
        return result

    def down(self) -> None:
        """Remove the project's containers, network and volume (idempotent)."""
        self.compose("down", "--volumes", "--remove-orphans", check=False)

    def wait_connect(self, timeout: float = 90.0, interval: float = 0.02) -> float:
        """Seconds until a TCP connection to the server succeeds (polled every ``interval``)."""
        started = time.perf_counter()
        deadline = started + timeout
        params = {**self.params(), "connect_timeout": 1}
        while True:
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error:
                if time.perf_counter() > deadline:
                    raise BenchError(
                        f"PostgreSQL of project {self.tag} did not accept connections "
                        f"within {timeout:.0f}s"
                    ) from None
                time.sleep(interval)
            else:
                return time.perf_counter() - started

    # The largest generated set the default lock table holds in the floor's one
    # transaction (about 1.5 locks per file); above it, start() sizes the table.
    DEFAULT_LOCK_FILES = 4000

    def start(self, lock_table: bool = True) -> None:
        """Provision (image, compose plugin), bring the server up and, with ``lock_table``,
        size its lock table (a restart)."""
        client = environment.docker_client()
        provision.ensure_image(client)
        provision.ensure_compose_plugin()
        self.down()
        self.compose("up", "-d", "postgres")
        self.wait_connect()
        if not lock_table:
            return
        with self.admin() as conn:
            conn.execute(
                f"ALTER SYSTEM SET max_locks_per_transaction = {MAX_LOCKS_PER_TRANSACTION}"
            )
        self.compose("restart", "postgres")
        self.wait_connect()

    # --- databases -------------------------------------------------------------------

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(**self.params(), autocommit=True)

    def create_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def scalar(self, sql: str, dbname: str = ADMIN_DB) -> Any:
        with psycopg.connect(**self.params(dbname), autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
        return row[0] if row else None

    def psql_command(self, dbname: str, *args: str) -> list[str]:
        """``docker exec -i CONTAINER psql -U USER -d DB ARGS`` (no host psql)."""
        return [
            "docker",
            "exec",
            "-i",
            self.container,
            "psql",
            "-U",
            USER,
            "-d",
            dbname,
            *args,
        ]
