"""alumdb.blockers against a real blocker: a transaction that holds ``contacts`` open."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from alumdb import blockers

pytestmark = pytest.mark.docker

KEY = 0x616C756D6462


@pytest.fixture
def blocker(fresh_db: str) -> Iterator[psycopg.Connection[Any]]:
    """A session named 'crm report' with a transaction open that has read ``contacts``."""
    with psycopg.connect(fresh_db, autocommit=True) as setup:
        setup.execute("CREATE TABLE contacts (id int PRIMARY KEY, name text)")
        setup.execute("INSERT INTO contacts VALUES (1, 'ada')")
    conn = psycopg.connect(fresh_db, application_name="crm report")
    conn.execute("SELECT count(*) FROM contacts WHERE name <> 'secret literal'")
    try:
        yield conn
    finally:
        conn.close()


def test_blocking_names_the_session_and_the_relation_waited_for(
    fresh_db: str, blocker: psycopg.Connection[Any]
) -> None:
    with (
        psycopg.connect(fresh_db, autocommit=True) as waiter,
        psycopg.connect(fresh_db, autocommit=True) as observer,
    ):
        pid = waiter.info.backend_pid
        alter = threading.Thread(
            target=waiter.execute,
            args=("ALTER TABLE contacts ADD COLUMN IF NOT EXISTS nickname TEXT",),
        )
        alter.start()
        try:
            found: list[blockers.Blocker] = []
            for _ in range(500):  # until the ALTER is queued (bounded, no time asserted)
                found = blockers.blocking(observer, pid)
                if found:
                    break
                time.sleep(0.01)
        finally:
            blocker.commit()
            alter.join()
        assert found, "the waiting ALTER was never seen blocked"
        (only,) = found
        assert only.pid == blocker.info.backend_pid
        assert only.application_name == "crm report"
        assert only.state == "idle in transaction"
        assert only.relation == "contacts"
        assert only.mode == "AccessShareLock"
        assert only.xact_age is not None and only.xact_age >= 0
        assert "secret" not in only.query and only.query.startswith("SELECT count(*)")
        line = only.describe()
        assert f"pid {only.pid}" in line and "'crm report'" in line
        # Nothing waits any more: nobody blocks.
        assert blockers.blocking(observer, pid) == []


def test_holding_lists_holders_of_the_relations_after_the_fact(
    fresh_db: str, blocker: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as migration:
        found = blockers.holding(migration, ["contacts", "no_such_table"])
        assert [b.pid for b in found] == [blocker.info.backend_pid]
        assert found[0].granted and found[0].relation == "contacts"
        # An ACCESS SHARE lock does not block a mode that only conflicts with writers.
        assert blockers.holding(migration, ["contacts"], mode="ShareLock") == []
        assert blockers.holding(migration, []) == []
        # Relation unknown: any table of the database.
        assert [b.pid for b in blockers.holding(migration, None)] == [blocker.info.backend_pid]
        blocker.commit()
        assert blockers.holding(migration, ["contacts"]) == []


def test_advisory_holders_name_the_session_and_since_when(fresh_db: str) -> None:
    with (
        psycopg.connect(fresh_db, autocommit=True, application_name="alumdb migrate") as first,
        psycopg.connect(fresh_db, autocommit=True) as second,
    ):
        first.execute("SELECT pg_advisory_lock(%s)", (KEY,))
        (holder,) = blockers.advisory_holders(second, KEY)
        assert holder.pid == first.info.backend_pid
        assert holder.application_name == "alumdb migrate"
        assert holder.since is not None
        assert blockers.advisory_holders(first, KEY) == []  # itself is not a holder to wait for
        first.execute("SELECT pg_advisory_unlock(%s)", (KEY,))
        assert blockers.advisory_holders(second, KEY) == []
