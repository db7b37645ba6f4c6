"""Through a connection pooler in transaction mode: PgBouncer in front of the server.

Behind such a pooler, consecutive transactions of one client may run in different
server sessions, so session state (session advisory locks, prepared statements,
temporary objects created in an earlier transaction) cannot be relied on. The runner
takes its lock inside each file's transaction, prepares nothing, and creates its
temporary helper functions again in every message; these tests run it that way, with
fewer server sessions than clients.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from alumdb import catalog, runner
from tests.conftest import POOL_SIZE, Pooler
from tests.integration.test_concurrency import (
    applied_count,
    assert_applied_exactly_once,
    fixture_folder,
    migrate_together,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def backend_pids(url: str) -> set[int]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT pid FROM ran")}


@contextlib.contextmanager
def full_pool(pooler: Pooler, url: str) -> Iterator[None]:
    """Hold a client on the pooler until it has its POOL_SIZE server sessions to ``url``.

    PgBouncer tops a pool up to min_pool_size while clients are connected; with the
    sessions idle, server_round_robin gives consecutive transactions different ones.
    """
    with psycopg.connect(pooler.url(url), autocommit=True) as held:
        held.execute("SELECT 1")
        deadline = time.monotonic() + 20
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                if row and row[0] >= POOL_SIZE:
                    break
                assert time.monotonic() < deadline, f"{row} server sessions, not {POOL_SIZE}"
                time.sleep(0.1)
        yield


@pytest.mark.parametrize(
    ("slow_seconds", "count"),
    [(2, 10), (0, 3 * runner.BATCH_FILES)],
    ids=["slow-file", "many-files"],
)
def test_eight_runs_through_the_pooler(
    pooler: Pooler, fresh_db: str, tmp_path: Path, slow_seconds: float, count: int
) -> None:
    folder = fixture_folder(tmp_path / "migrations", slow_seconds, count)
    results = migrate_together(pooler.url(fresh_db), folder)

    for result in results:
        assert result.returncode == 0, result.stderr
    assert_applied_exactly_once(fresh_db, folder)
    outputs = [r.stdout for r in results]
    assert sum(applied_count(r) for r in results) == len(list(folder.glob("*.sql"))), outputs
    # Eight clients, at most POOL_SIZE server sessions: the files ran in shared sessions.
    assert 1 <= len(backend_pids(fresh_db)) <= POOL_SIZE
    if slow_seconds:
        # While one run sleeps in its file, the clients that get the other server
        # sessions meet the lock and say so; the rest wait in the pooler's queue for a
        # session, which they cannot tell apart from a slow network.
        waited = [out for out in outputs if "waiting" in out]
        assert waited, outputs
        assert all("which another migration run holds: " in out for out in waited), outputs


def test_one_run_meets_several_server_sessions(
    pooler: Pooler, fresh_db: str, tmp_path: Path
) -> None:
    """One run whose transactions the pooler spreads over its server sessions."""
    folder = fixture_folder(tmp_path / "migrations", 0, 3 * runner.BATCH_FILES)
    events: list[runner.Event] = []
    with (
        full_pool(pooler, fresh_db),
        psycopg.connect(pooler.url(fresh_db), autocommit=True, prepare_threshold=None) as conn,
    ):
        runner.migrate(conn, catalog.load(folder), on_event=events.append)
        again = runner.migrate(conn, catalog.load(folder))

    assert_applied_exactly_once(fresh_db, folder)
    assert [e.kind for e in events].count("applied") == len(list(folder.glob("*.sql")))
    assert not again.applied and again.already_applied == len(list(folder.glob("*.sql")))
    assert len(backend_pids(fresh_db)) > 1  # the messages ran in different sessions
