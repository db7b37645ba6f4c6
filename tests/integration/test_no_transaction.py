"""Files that run outside a transaction: ``-- alumdb:no-transaction`` on the first line.

``CREATE INDEX CONCURRENTLY`` cannot run in a transaction block, so such a file runs
statement by statement in autocommit, under the session-level advisory lock, between
the messages of ordinary files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from alumdb import catalog, runner
from alumdb.catalog import NO_TRANSACTION_DIRECTIVE
from alumdb.errors import MigrationFailed
from tests.conftest import Pooler
from tests.helpers import db_state, migration_sql, write_folder
from tests.integration.test_concurrency import (
    applied_count,
    assert_applied_exactly_once,
    logged,
    migrate_together,
)
from tests.integration.test_pooler import full_pool

pytestmark = pytest.mark.docker


def concurrent_index(version: str, table: str, extra: str = "") -> str:
    body = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{table}_a ON {table} (a);\n{extra}"
    return f"{NO_TRANSACTION_DIRECTIVE}\n" + migration_sql(version, f"idx_{table}", body)


def table(version: str, name: str) -> str:
    return migration_sql(version, name, f"CREATE TABLE IF NOT EXISTS {name} (a int);")


def folder(tmp_path: Path, **files: str) -> Path:
    return write_folder(tmp_path / "migrations", files)


def migrate(url: str, directory: Path) -> runner.Report:
    with psycopg.connect(url, autocommit=True) as conn:
        return runner.migrate(conn, catalog.load(directory))


def index_valid(url: str, name: str) -> bool | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s",
            (name,),
        ).fetchone()
    return None if row is None else bool(row[0])


def test_between_ordinary_files(fresh_db: str, tmp_path: Path) -> None:
    directory = folder(
        tmp_path,
        **{
            "002_t2.sql": table("002", "t2"),
            "003_idx_t2.sql": concurrent_index("003", "t2"),
            "004_t4.sql": table("004", "t4"),
        },
    )
    report = migrate(fresh_db, directory)

    assert [m.version for m, _ in report.applied] == ["001", "002", "003", "004"]
    assert index_valid(fresh_db, "idx_t2_a") is True
    with psycopg.connect(fresh_db) as conn:
        checksum = conn.execute(
            "SELECT checksum FROM schema_migrations WHERE version = '003'"
        ).fetchone()
        held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    migration = catalog.load(directory).find("003")
    assert migration is not None and checksum == (migration.checksum,)
    assert held == (0,)  # the session lock was released
    assert not migrate(fresh_db, directory).applied


def test_failure_keeps_earlier_statements_and_no_record(fresh_db: str, tmp_path: Path) -> None:
    bad = concurrent_index("003", "t2", "CREATE INDEX CONCURRENTLY idx_bad ON missing (a);")
    directory = folder(tmp_path, **{"002_t2.sql": table("002", "t2"), "003_idx_t2.sql": bad})
    with pytest.raises(MigrationFailed) as failed:
        migrate(fresh_db, directory)

    message = str(failed.value)
    assert message.startswith('003_idx_t2.sql:8:1: relation "missing" does not exist'), message
    assert "statements before this one stay applied" in message
    assert index_valid(fresh_db, "idx_t2_a") is True  # not in a transaction: it stays
    assert [v for v, _ in db_state(fresh_db)[1]] == ["001", "002"]

    (directory / "003_idx_t2.sql").write_text(concurrent_index("003", "t2"))
    assert [m.version for m, _ in migrate(fresh_db, directory).applied] == ["003"]


def test_eight_runs_apply_it_once(fresh_db: str, tmp_path: Path) -> None:
    files = {f"{v:03d}_step_{v:03d}.sql": logged(f"{v:03d}") for v in (2, 3, 5)}
    files["004_step_004.sql"] = f"{NO_TRANSACTION_DIRECTIVE}\n" + logged(
        "004", "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_ran_version ON ran (version);"
    )
    directory = write_folder(tmp_path / "migrations", files)
    results = migrate_together(fresh_db, directory)

    for result in results:
        assert result.returncode == 0, result.stderr
    assert_applied_exactly_once(fresh_db, directory)
    assert sum(applied_count(r) for r in results) == 5
    assert index_valid(fresh_db, "idx_ran_version") is True


def test_a_waiting_run_keeps_no_transaction_open(fresh_db: str, tmp_path: Path) -> None:
    """While a run waits for the lock, the index the holder builds does not wait for it.

    ``CREATE INDEX CONCURRENTLY`` waits for every transaction that had a snapshot when it
    looked; a waiter that kept one transaction open across its tries would be waited for
    while it waits itself, and the index would fail on its lock_timeout (seen in CI).
    """
    directory = folder(
        tmp_path,
        **{"002_t2.sql": table("002", "t2"), "003_idx_t2.sql": concurrent_index("003", "t2")},
    )
    waiting = threading.Event()
    outcome: list[runner.Report | BaseException] = []

    def run(conn: psycopg.Connection[object]) -> None:
        def on_event(event: runner.Event) -> None:
            if event.kind == "waiting":
                waiting.set()

        try:
            outcome.append(runner.migrate(conn, catalog.load(directory), on_event=on_event))
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    with (
        psycopg.connect(fresh_db, autocommit=True) as holder,
        psycopg.connect(fresh_db, autocommit=True) as conn,
    ):
        holder.execute("CREATE TABLE held (a int)")
        holder.execute("SELECT pg_advisory_lock(%s)", (runner.ADVISORY_LOCK_KEY,))
        waiter = threading.Thread(target=run, args=(conn,))
        waiter.start()
        try:
            assert waiting.wait(30), "the run never reported that it waits for the lock"
            samples = []
            for _ in range(100):
                row = holder.execute(
                    "SELECT xact_start IS NOT NULL FROM pg_stat_activity WHERE pid = %s",
                    (conn.info.backend_pid,),
                ).fetchone()
                samples.append(bool(row and row[0]))
                time.sleep(0.005)
            holder.execute("SET lock_timeout = '2s'")
            holder.execute("CREATE INDEX CONCURRENTLY idx_held_a ON held (a)")
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            waiter.join(60)

    # One try lasts a round trip or two, so a sample rarely meets one; a waiter that
    # held its transaction between tries would be in one at (nearly) every sample.
    assert sum(samples) < 25, f"in a transaction at {sum(samples)} of 100 samples"
    assert index_valid(fresh_db, "idx_held_a") is True
    [report] = outcome
    assert isinstance(report, runner.Report), report
    assert [m.version for m, _ in report.applied] == ["001", "002", "003"]
    assert report.waited > 0


@pytest.mark.slow
def test_through_a_transaction_pooler_it_stops_clearly(
    pooler: Pooler, fresh_db: str, tmp_path: Path
) -> None:
    """A session lock cannot hold behind a pooler that moves statements between sessions."""
    directory = folder(
        tmp_path,
        **{"002_t2.sql": table("002", "t2"), "003_idx_t2.sql": concurrent_index("003", "t2")},
    )
    with (
        full_pool(pooler, fresh_db),
        psycopg.connect(pooler.url(fresh_db), autocommit=True, prepare_threshold=None) as conn,
        pytest.raises(MigrationFailed) as failed,
    ):
        runner.migrate(conn, catalog.load(directory))

    assert "reach another server session than the lock" in str(failed.value)
    assert "apply it over a direct connection" in str(failed.value)
    assert [v for v, _ in db_state(fresh_db)[1]] == ["001", "002"]
    assert index_valid(fresh_db, "idx_t2_a") is None  # stopped before the file ran
