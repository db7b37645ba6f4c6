"""Prove migrations/ on a fresh database, the two ways the project applies it.

1. The runner (what ``invoke migrate`` calls) on an empty database, then again: the
   second run applies nothing and ``pg_dump --schema-only`` is identical.
2. The spec's compose ``migrations`` service (one psql per file) on a fresh volume:
   the same schema dump and the same ``schema_migrations`` rows as the runner left.
3. The runner on the database the compose loop made adopts it (records the checksums)
   and applies nothing.

Everything runs in a scratch compose project of its own (project name, port, password),
removed with its volume at the end, whatever happened.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from alumdb import catalog, database, environment, runner, tracking
from alumdb.errors import VerifyError
from alumdb.schema_dump import dump as schema_dump

if TYPE_CHECKING:
    import docker

SCRATCH_PREFIX = "alumdbverify"


@dataclass(frozen=True)
class Step:
    """One check that passed, with what it saw."""

    name: str
    detail: str
    seconds: float


def diff_excerpt(expected: str, actual: str, labels: tuple[str, str], lines: int = 12) -> str:
    """The first lines of a unified diff, for an error message."""
    diff = list(
        difflib.unified_diff(expected.splitlines(), actual.splitlines(), *labels, lineterm="", n=1)
    )
    more = f"\n  ... {len(diff) - lines} more diff lines" if len(diff) > lines else ""
    return "\n".join(f"  {line}" for line in diff[:lines]) + more


def _rows(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return sorted((row.version, row.name) for row in tracking.read_applied(conn))


class _Steps:
    """The checks that passed, each timed from the end of the one before."""

    def __init__(self, on_step: Callable[[Step], None] | None) -> None:
        self.done: list[Step] = []
        self.on_step = on_step
        self.started = time.monotonic()

    def passed(self, name: str, detail: str) -> None:
        step = Step(name, detail, time.monotonic() - self.started)
        self.done.append(step)
        if self.on_step is not None:
            self.on_step(step)
        self.started = time.monotonic()


def verify(
    project_dir: Path,
    folder: catalog.Catalog,
    on_step: Callable[[Step], None] | None = None,
    timeout: float = 90.0,
) -> list[Step]:
    """Run the checks above in a scratch environment; raise :class:`VerifyError` on a mismatch."""
    env = environment.resolve("dev", project_dir, environment.scratch_settings(SCRATCH_PREFIX))
    client = environment.docker_client()
    steps = _Steps(on_step)
    try:
        up = environment.up(env, client, timeout=timeout)
        steps.passed("up", f"scratch project {env.project} ready in {up.waited:.1f}s")
        dump, rows = _runner_twice(client, up.endpoint, folder, steps, timeout)
        environment.down(env, volumes=True)
        environment.compose(env, "run", "--rm", "migrations", what="compose run migrations")
        point = environment.running_endpoint(env, client)
        _compose_then_adopt(
            client, point, folder, steps, runner_dump=dump, runner_rows=rows, timeout=timeout
        )
    finally:
        environment.down(env, volumes=True)
    return steps.done


def _runner_twice(
    client: docker.DockerClient,
    point: environment.Endpoint,
    folder: catalog.Catalog,
    steps: _Steps,
    timeout: float,
) -> tuple[str, list[tuple[str, str]]]:
    """Migrate an empty database twice: everything, then nothing, the same schema.

    Returns the schema dump and the tracking rows the runner left."""
    with database.connect(point.conninfo(), wait=timeout) as conn:
        first = runner.migrate(conn, folder)
        after_first = schema_dump(client, point)
        second = runner.migrate(conn, folder)
        after_second = schema_dump(client, point)
        rows = _rows(conn)
    if len(first.applied) != len(folder):
        raise VerifyError(
            f"the runner applied {len(first.applied)} of {len(folder)} files on an empty database"
        )
    steps.passed("runner", f"{len(first.applied)} files applied in {first.seconds:.2f}s")
    if second.applied:
        raise VerifyError(
            f"a second run applied {len(second.applied)} files again "
            f"({second.applied[0][0].filename} first); the runner must skip applied files"
        )
    if after_second != after_first:
        raise VerifyError(
            "the schema changed when migrations/ ran a second time; a file is not "
            "idempotent:\n" + diff_excerpt(after_first, after_second, ("first", "second"))
        )
    steps.passed("rerun", "second run applied nothing; pg_dump --schema-only identical")
    return after_first, rows


def _compose_then_adopt(
    client: docker.DockerClient,
    point: environment.Endpoint,
    folder: catalog.Catalog,
    steps: _Steps,
    *,
    runner_dump: str,
    runner_rows: list[tuple[str, str]],
    timeout: float,
) -> None:
    """The compose loop's database equals the runner's, and the runner adopts it."""
    compose_dump = schema_dump(client, point)
    with database.connect(point.conninfo(), wait=timeout) as conn:
        compose_rows = _rows(conn)
        if compose_dump != runner_dump:
            raise VerifyError(
                "the compose migrations service left a different schema than invoke "
                "migrate:\n" + diff_excerpt(runner_dump, compose_dump, ("runner", "compose"))
            )
        if compose_rows != runner_rows:
            raise VerifyError(
                f"schema_migrations differs: runner recorded {runner_rows}, the compose "
                f"loop {compose_rows}"
            )
        steps.passed("compose", "compose migrations service: same schema dump and rows")
        adopted = runner.migrate(conn, folder)
    if adopted.applied or len(adopted.adopted) != len(folder):
        raise VerifyError(
            f"the runner should adopt the {len(folder)} files the compose loop applied; "
            f"it adopted {len(adopted.adopted)} and applied {len(adopted.applied)}"
        )
    steps.passed("adopt", f"runner adopted {len(adopted.adopted)} files (checksums recorded)")
