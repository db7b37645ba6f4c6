"""What a second connection sees of a session the runner waits on (alumdb.runner.watch)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from alumdb import database
from alumdb.runner import watch

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
