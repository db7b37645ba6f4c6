"""What a second connection sees of a session the runner waits on (alumdb.runner.watch)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from alumdb import catalog, database, runner
from alumdb.catalog import NO_TRANSACTION_DIRECTIVE
from alumdb.runner import watch
from tests.helpers import migration_sql, write_folder

pytestmark = pytest.mark.docker


def test_the_view_names_the_session_blocking_the_runner(fresh_db: str) -> None:
    params = database.parse_url(fresh_db)
    with (
        psycopg.connect(fresh_db, autocommit=True) as holder,
        psycopg.connect(fresh_db, autocommit=True) as waiter,
    ):
        holder.execute("CREATE TABLE t (id int)")
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        blocked = threading.Thread(target=lambda: waiter.execute("SELECT count(*) FROM t"))
        blocked.start()
        try:
            for _ in range(50):
                said = watch.server_view(params, waiter.info.backend_pid)
                if said.startswith("waiting"):
                    break
                threading.Event().wait(0.1)
            assert said == f"waiting for a lock held by pid {holder.info.backend_pid}"
        finally:
            holder.execute("ROLLBACK")
            blocked.join()
        assert watch.server_view(params, waiter.info.backend_pid).startswith(
            "the server has finished the statement (session idle)"
        )
        assert "pg_stat_activity" in watch.server_view(params, 2**31 - 1)


def test_an_index_built_concurrently_behind_a_writer_says_whose_transaction(
    fresh_db: str, tmp_path: Path
) -> None:
    """The common long wait of a live database: CREATE INDEX CONCURRENTLY waits for
    every transaction writing to the table; the runner names the one it waits for."""
    body = "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_t_a ON t (a);"
    directory = write_folder(
        tmp_path / "migrations",
        {
            "002_t.sql": migration_sql("002", "t", "CREATE TABLE IF NOT EXISTS t (a int);"),
            "003_idx.sql": f"{NO_TRANSACTION_DIRECTIVE}\n" + migration_sql("003", "idx", body),
        },
    )
    folder = catalog.load(directory)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, folder, runner.Options(target="002"))
    events: list[runner.Event] = []
    with psycopg.connect(fresh_db) as writer:  # the application, mid-transaction
        writer.execute("INSERT INTO t VALUES (1)")
        pid = writer.info.backend_pid
        run = threading.Thread(target=_migrate, args=(fresh_db, folder, events.append))
        run.start()
        try:
            said = _first(events, lambda e: e.kind == "running" and "lock" in e.detail)
        finally:
            writer.commit()  # the index can be built now
            run.join(timeout=30)
    assert said.migration is not None and said.migration.filename == "003_idx.sql"
    assert f"waiting for a lock held by pid {pid}" in said.detail
    assert [e.migration.filename for e in events if e.kind == "applied" and e.migration] == [
        "003_idx.sql"
    ]


def _migrate(url: str, folder: catalog.Catalog, sink: runner.EventSink) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        runner.migrate(conn, folder, on_event=sink)


def _first(events: list[runner.Event], wanted: Callable[[runner.Event], bool]) -> runner.Event:
    deadline = time.monotonic() + 30  # a hang guard: the first word comes after 5 s
    while time.monotonic() < deadline:
        found = next((e for e in list(events) if wanted(e)), None)
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no such event among {events}")
