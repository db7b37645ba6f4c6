"""Cold start: from no containers (compose down -v) to a fully migrated database.

Three measurements, each from the bench's compose project torn down with its volume:

* ``ready``: ``docker compose up -d postgres`` until a TCP connection succeeds
  (polled every 20 ms): what the container alone takes; then ``apply``: the engine
  in-process (``runner.migrate``) on that just-started server, so "ready + apply"
  is the lower bound for getting from nothing to a migrated database;
* ``invoke``: ``python -m invoke migrate`` in its compose-target form (no URL): it
  starts the environment, waits for it and applies every file;
* ``spec``: the spec's documented commands, ``docker compose -f docker-compose.dev.yml
  up postgres -d`` then ``docker compose -f docker-compose.dev.yml run --rm
  migrations`` (whose ``depends_on: service_healthy`` does the waiting).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from alumdb import catalog, database, runner
from bench.server import ROOT, BenchError, BenchServer, tail
from bench.workloads import Workload

KINDS = ("ready", "invoke", "spec")
MEASURES = ("ready", "apply", "invoke", "spec")


def _check_migrated(server: BenchServer, workload: Workload, kind: str) -> None:
    rows = server.scalar("SELECT count(*) FROM schema_migrations")
    if rows != workload.files:
        raise BenchError(
            f"cold start {kind}: {rows} rows in schema_migrations, not {workload.files}"
        )


def measure(
    server: BenchServer,
    workload: Workload,
    repeats: int,
    log: Callable[[str], None],
) -> dict[str, list[float]]:
    """Seconds of each kind, ``repeats`` times, interleaved."""

    def ready() -> float:
        started = time.perf_counter()
        server.compose("up", "-d", "postgres")
        server.wait_connect()
        seconds = time.perf_counter() - started
        conn = database.connect(server.params())
        try:
            begun = time.perf_counter()
            runner.migrate(conn, catalog.load(workload.migrations))
            times["apply"].append(time.perf_counter() - begun)
        finally:
            conn.close()
        _check_migrated(server, workload, "engine")
        return seconds

    def invoke() -> float:
        args = [sys.executable, "-m", "invoke", "migrate", "--migrations", str(workload.migrations)]
        started = time.perf_counter()
        result = subprocess.run(
            args,
            cwd=ROOT,
            env=server.child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise BenchError(f"cold start invoke migrate failed: {tail(result.stderr)}")
        _check_migrated(server, workload, "invoke")
        return seconds

    def spec() -> float:
        started = time.perf_counter()
        server.compose("up", "postgres", "-d", compose_file=workload.compose_file)
        server.compose("run", "--rm", "migrations", compose_file=workload.compose_file)
        seconds = time.perf_counter() - started
        _check_migrated(server, workload, "spec")
        return seconds

    actions: dict[str, Callable[[], float]] = {"ready": ready, "invoke": invoke, "spec": spec}
    times: dict[str, list[float]] = {kind: [] for kind in MEASURES}
    for rep in range(repeats):
        for offset in range(len(KINDS)):
            kind = KINDS[(rep + offset) % len(KINDS)]
            server.down()
            seconds = actions[kind]()
            times[kind].append(seconds)
            extra = f" + apply {times['apply'][-1]:.3f}s" if kind == "ready" else ""
            log(f"  cold start {rep + 1}/{repeats} {kind:<7} {seconds:7.3f}s{extra}")
    return times
