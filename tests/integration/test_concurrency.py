"""One run at a time: eight `invoke migrate` processes started together on one database.

Each fixture file (beyond the real 001_init.sql) logs one row per execution into
``ran``, so a file applied twice shows as two rows, not as a silent no-op.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from alumdb import runner
from tests.helpers import ROOT, migration_sql, write_folder

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PROCESSES = 8
DEADLOCK_GUARD = 180  # seconds: a run that hangs this long is a deadlock


def logged(version: str, ddl: str = "") -> str:
    """DDL plus a row in ``ran`` for each execution of the file (test fixtures only)."""
    return migration_sql(
        version,
        f"step_{version}",
        f"CREATE TABLE IF NOT EXISTS ran (version text NOT NULL, pid int NOT NULL);\n{ddl}\n"
        f"INSERT INTO ran VALUES ('{version}', pg_backend_pid());",
    )


def fixture_folder(directory: Path, slow_seconds: float, count: int = 10) -> Path:
    files = {
        f"{v:03d}_step_{v:03d}.sql": logged(
            f"{v:03d}", f"CREATE TABLE IF NOT EXISTS t_{v:03d} (id int);"
        )
        for v in range(2, count + 2)
    }
    if slow_seconds:
        files["004_step_004.sql"] = logged("004", f"SELECT pg_sleep({slow_seconds});")
    return write_folder(directory, files)


def migrate_together(url: str, folder: Path) -> list[subprocess.CompletedProcess[str]]:
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    command = [sys.executable, "-m", "invoke", "migrate", "--database-url", url]
    command += ["--migrations", str(folder)]
    pipe = subprocess.PIPE
    procs = [
        subprocess.Popen(command, cwd=ROOT, env=environ, stdout=pipe, stderr=pipe, text=True)
        for _ in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=DEADLOCK_GUARD)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def assert_applied_exactly_once(url: str, folder: Path) -> None:
    versions = sorted(p.name.split("_")[0] for p in folder.glob("*.sql"))
    with psycopg.connect(url) as conn:
        recorded = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        ran = conn.execute("SELECT version, count(*) FROM ran GROUP BY 1 ORDER BY 1").fetchall()
    assert sorted(recorded) == versions
    assert ran == [(v, 1) for v in versions if v != "001"]


def applied_count(result: subprocess.CompletedProcess[str]) -> int:
    return sum(1 for line in result.stdout.splitlines() if line.startswith("  applied "))


@pytest.mark.parametrize(
    ("slow_seconds", "count"),
    # many-files: more files than one message carries, so the runs hand the lock over
    # in the middle of their messages.
    [(0, 10), (3, 10), (0, 3 * runner.BATCH_FILES)],
    ids=["quick-files", "slow-file", "many-files"],
)
def test_eight_runs_apply_each_file_exactly_once(
    fresh_db: str, tmp_path: Path, slow_seconds: float, count: int
) -> None:
    folder = fixture_folder(tmp_path / "migrations", slow_seconds, count)
    results = migrate_together(fresh_db, folder)

    for result in results:
        assert result.returncode == 0, result.stderr
    assert_applied_exactly_once(fresh_db, folder)
    outputs = [r.stdout for r in results]
    assert sum(applied_count(r) for r in results) == len(list(folder.glob("*.sql"))), outputs
    # Every run, not only those that say they waited: a wait is announced with the
    # holder, and a wait in the summary was announced first.
    line = "waiting for the migration lock, which another migration run holds: "
    announced = [r for r in results if line in r.stdout]
    for result in results:
        if "waiting" in result.stdout or "for another run" in result.stdout:
            assert result in announced, result.stdout  # says what it waits for
    for result in announced:
        # The holder by pid and application_name, unless it let go between this run's
        # try and its look at pg_locks; and the bound either way.
        assert (f"{line}pid " in result.stdout and "'alumdb migrate" in result.stdout) or (
            f"{line}a session that has just released it" in result.stdout
        ), result.stdout
        assert "giving up after " in result.stdout, result.stdout
    if slow_seconds:
        # The slow file holds the lock for seconds, so the runs truly overlap: the ones
        # not applying it meet the lock, say so, and report the wait in their summary.
        assert len(announced) >= PROCESSES // 2, outputs
        assert sum("for another run" in r.stdout for r in results) >= PROCESSES // 2, outputs
