"""The clone pool behind alumdb_url (alumdb/clonepool.py), on the harness's PostgreSQL.

Clones of the session's migrated template: each handed out once, distinct, empty and
fully migrated; every clone gone after close(), the spares never handed out included;
clones of a killed session dropped by the next pool, a live pool's clones left alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alumdb import catalog, clonepool, database, scaffold, testdb
from alumdb.errors import DatabaseUnavailableError
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS

pytestmark = pytest.mark.docker


def clones(pg_server: PgServer, token: str) -> set[str]:
    with pg_server.admin() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
            (f"{testdb.CLONE_PREFIX}{token}_",),
        ).fetchall()
    return {r[0] for r in rows}


def params(pg_server: PgServer) -> database.Conninfo:
    return psycopg.conninfo.conninfo_to_dict(pg_server.url())


@pytest.mark.parametrize("spares", [2, 0])
def test_each_clone_is_new_migrated_and_gone_after_close(
    pg_server: PgServer, alumdb_template: testdb.Template, spares: int
) -> None:
    pool = clonepool.ClonePool(params(pg_server), alumdb_template.name, spares)
    migrations = len(catalog.load(MIGRATIONS))
    handed: list[str] = []
    leaked: list[psycopg.Connection[Any]] = []
    try:
        for _ in range(5):
            name = pool.get(timeout=120)
            handed.append(name)
            with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM schema_migrations),"
                    " (SELECT count(*) FROM tenants)"
                ).fetchone()
                assert row == (migrations, 0), f"{name} is not a fresh, fully migrated clone"
                conn.execute("INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme')")
            # A test that leaves a connection open: its database is dropped all the same.
            leaked.append(psycopg.connect(pg_server.url(name), autocommit=True))
            pool.release(name)
        assert len(set(handed)) == 5, "a clone was handed out twice"
        if spares:
            # The thread drops the released clones and keeps `spares` new ones ready.
            def settled() -> bool:
                now = clones(pg_server, pool.token)
                return len(now) == spares and not now & set(handed)

            deadline = time.monotonic() + 60
            while not settled() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert settled(), "released clones kept, or spares not made"
        else:
            assert clones(pg_server, pool.token) == set(), "a released clone was kept"
    finally:
        dropped = pool.close()
        for conn in leaked:
            conn.close()
    assert clones(pg_server, pool.token) == set(), "close() left clones behind"
    assert len(dropped) == (spares if spares else 0)


def test_a_killed_sessions_clones_are_dropped_by_the_next_pool_not_a_live_ones(
    pg_server: PgServer, alumdb_template: testdb.Template
) -> None:
    live = clonepool.ClonePool(params(pg_server), alumdb_template.name, spares=1)
    try:
        kept = live.get(timeout=120)
        script = (
            "import os, sys\n"
            "from alumdb import clonepool\n"
            f"pool = clonepool.ClonePool({params(pg_server)!r}, {alumdb_template.name!r}, 0)\n"
            "print(pool.token, pool.get(), pool.get(), flush=True)\n"
            "os._exit(0)  # killed: no close(), no drop\n"
        )
        killed = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
        )
        token, *left = killed.stdout.split()
        assert clones(pg_server, token) == set(left)
        # The killed session's connection goes away soon after its process.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and owner_connected(pg_server, token):
            time.sleep(0.05)
        after = clonepool.ClonePool(params(pg_server), alumdb_template.name, spares=0)
        after.close()
        assert set(after.orphans) == set(left)
        assert clones(pg_server, token) == set()
        assert kept in clones(pg_server, live.token), "a live pool's clone was dropped"
        live.release(kept)
    finally:
        live.close()
    assert clones(pg_server, live.token) == set()


def owner_connected(pg_server: PgServer, token: str) -> bool:
    with pg_server.admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE starts_with(application_name, %s)",
            (f"{testdb.POOL_PREFIX}{token} ",),
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("spares", [1, 0])
def test_a_clone_that_fails_says_so_in_one_line(pg_server: PgServer, spares: int) -> None:
    pool = clonepool.ClonePool(params(pg_server), "alumdb_tpl_missing", spares)
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            pool.get(timeout=60)
    finally:
        pool.close()
    message = str(caught.value)
    assert message.startswith("could not clone the template alumdb_tpl_missing: ")
    assert "does not exist" in message and "\n" not in message
    assert clones(pg_server, pool.token) == set()


def test_a_pool_whose_connections_were_lost_goes_on_with_clones_that_exist(
    pg_server: PgServer, alumdb_template: testdb.Template
) -> None:
    """A server restart ends the pool's connections; meanwhile another pool takes its
    ready clones for orphans and drops them. The next test still gets a fresh clone."""
    pool = clonepool.ClonePool(params(pg_server), alumdb_template.name, spares=1)
    try:
        deadline = time.monotonic() + 120
        while not clones(pg_server, pool.token) and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = clones(pg_server, pool.token)
        assert len(ready) == 1
        with pg_server.admin() as conn:  # what a restart does to the pool's sessions
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE starts_with(application_name, %s)",
                (f"{testdb.POOL_PREFIX}{pool.token} ",),
            )
        while owner_connected(pg_server, pool.token) and time.monotonic() < deadline:
            time.sleep(0.05)
        other = clonepool.ClonePool(params(pg_server), alumdb_template.name, spares=0)
        other.close()
        assert set(other.orphans) == ready
        name = pool.get(timeout=120)
        assert name not in ready
        with psycopg.connect(pg_server.url(name)) as conn:
            row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert row == (len(catalog.load(MIGRATIONS)),)
        pool.release(name)
    finally:
        pool.close()
    assert clones(pg_server, pool.token) == set()


def test_a_new_template_leaves_the_old_one_while_a_session_clones_from_it(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """A migration edited while a session runs: the next session's build keeps the old
    template for the running session's pool, and a later build drops it."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    server = params(pg_server)
    old = testdb.ensure_template(server, catalog.load(directory)).name
    pool = clonepool.ClonePool(server, old, spares=1)
    try:
        scaffold.new_migration(directory, "add_nothing")
        new = testdb.ensure_template(server, catalog.load(directory))
        assert new.built and old not in new.removed
        name = pool.get(timeout=120)  # the running session goes on cloning the old one
        pool.release(name)
    finally:
        pool.close()
    scaffold.new_migration(directory, "more_nothing")
    last = testdb.ensure_template(server, catalog.load(directory))
    assert set(last.removed) == {old, new.name}
    with pg_server.admin() as conn:
        testdb.drop(conn, last.name)
