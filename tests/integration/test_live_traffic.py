"""Migrations under live traffic: short lock waits, retries that name the blocker, bounds.

A blocker is a session named ``crm report`` with a transaction open that has read
``contacts`` (it holds ACCESS SHARE, which every ``ALTER TABLE`` waits for). No test
asserts a wall-clock time: the stall figures come from ``bench/`` (live traffic).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import ROOT, migration_sql, write_folder

pytestmark = [pytest.mark.docker, pytest.mark.slow]

GUARD = 120  # seconds: a run or a wait that takes this long is a hang, not a result
CONTACTS = migration_sql("002", "contacts", "CREATE TABLE IF NOT EXISTS contacts (id int);")
NICKNAME = migration_sql(
    "003",
    "nickname",
    "CREATE TABLE IF NOT EXISTS side_effect (id int);\n"
    "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS nickname TEXT;",
)
NO_TRANSACTION = "-- alumdb:no-transaction\n" + NICKNAME


class Run:
    """``invoke migrate`` in the background, its output read line by line as it comes."""

    def __init__(self, url: str, folder: Path, *options: str) -> None:
        environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        command = [sys.executable, "-m", "invoke", "migrate", "--database-url", url]
        command += ["--migrations", str(folder), *options]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for_line(self, text: str, count: int = 1) -> list[str]:
        """The first ``count`` lines of its output that hold ``text`` (waits for them)."""
        found = [line for line in self.stdout if text in line]
        while len(found) < count:
            try:
                line = self.lines.get(timeout=GUARD)
            except queue.Empty:
                pytest.fail(f"no {count} lines with {text!r} in {GUARD}s: {self.stdout}")
            self.stdout.append(line)
            if text in line:
                found.append(line)
        return found[:count]

    def finish(self) -> subprocess.CompletedProcess[str]:
        self.reader.join(timeout=GUARD)  # stdout ends when the process does
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()  # one line at most: it cannot fill the pipe
        self.proc.wait(timeout=GUARD)
        while not self.lines.empty():
            self.stdout.append(self.lines.get())
        return subprocess.CompletedProcess(
            self.proc.args, self.proc.returncode, "".join(self.stdout), err
        )


@pytest.fixture
def contacts_db(fresh_db: str, tmp_path: Path) -> str:
    """A database where 001 and 002 (``contacts``) are applied."""
    base = write_folder(tmp_path / "base", {"002_contacts.sql": CONTACTS})
    result = Run(fresh_db, base).finish()
    assert result.returncode == 0, result.stderr
    return fresh_db


@pytest.fixture
def blocker(contacts_db: str) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(contacts_db, application_name="crm report")
    conn.execute("SELECT count(*) FROM contacts")  # a transaction open, holding ACCESS SHARE
    try:
        yield conn
    finally:
        conn.close()


def state(url: str) -> tuple[bool, bool, list[str]]:
    """Whether ``contacts.nickname`` and ``side_effect`` exist; the recorded versions."""
    with psycopg.connect(url, autocommit=True) as conn:
        nickname = conn.execute(
            "SELECT EXISTS (SELECT FROM information_schema.columns"
            " WHERE table_name = 'contacts' AND column_name = 'nickname')"
        ).fetchone()
        side = conn.execute("SELECT to_regclass('side_effect') IS NOT NULL").fetchone()
        versions = [str(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")]
    return bool(nickname and nickname[0]), bool(side and side[0]), sorted(versions)


@pytest.mark.parametrize(
    "content", [NICKNAME, NO_TRANSACTION], ids=["transaction", "no-transaction"]
)
def test_retries_name_the_blocker_and_land_once_it_ends(
    contacts_db: str, blocker: psycopg.Connection[Any], tmp_path: Path, content: str
) -> None:
    folder = write_folder(
        tmp_path / "m", {"002_contacts.sql": CONTACTS, "003_nickname.sql": content}
    )
    run = Run(contacts_db, folder, "--lock-timeout", "0.05", "--lock-budget", str(GUARD))
    retries = run.wait_for_line("retrying", count=3)
    nickname, _, versions = state(contacts_db)
    assert not nickname and "003" not in versions  # nothing lands while the blocker holds
    blocker.commit()
    result = run.finish()
    assert result.returncode == 0, result.stderr
    pid = blocker.info.backend_pid
    for line in retries:
        assert "003_nickname.sql" in line
        assert "contacts" in line  # the relation waited for
        assert f"pid {pid} " in line and "'crm report'" in line
        assert "idle in transaction" in line and "transaction " in line
    assert state(contacts_db) == (True, True, ["001", "002", "003"])


def spend_budget(url: str, blocker: psycopg.Connection[Any], folder: Path, content: str) -> str:
    """Run 003 (``content``) with a budget shorter than the blocker: exit 7, one line
    that names the blocker and the SQL to end it. Returns that line."""
    write_folder(folder, {"002_contacts.sql": CONTACTS, "003_nickname.sql": content})
    result = Run(url, folder, "--lock-timeout", "0.05", "--lock-budget", "0.5").finish()
    assert result.returncode == 7, result
    assert "Traceback" not in result.stderr + result.stdout
    error = result.stderr.strip()
    assert len(error.splitlines()) == 1, error
    pid = blocker.info.backend_pid
    assert "003_nickname.sql:" in error and "contacts" in error  # the statement, the relation
    assert f"pid {pid} " in error and "'crm report'" in error
    assert f"SELECT pg_terminate_backend({pid});" in error
    return error


def test_budget_shorter_than_the_blocker_exits_7_with_nothing_applied(
    contacts_db: str, blocker: psycopg.Connection[Any], tmp_path: Path
) -> None:
    error = spend_budget(contacts_db, blocker, tmp_path / "m", NICKNAME)
    assert "nothing of this file was applied" in error
    assert state(contacts_db) == (False, False, ["001", "002"])


def test_no_transaction_budget_spent_keeps_earlier_statements_and_names_the_blocker(
    contacts_db: str, blocker: psycopg.Connection[Any], tmp_path: Path
) -> None:
    error = spend_budget(contacts_db, blocker, tmp_path / "m", NO_TRANSACTION)
    assert "statements before this one stay applied" in error
    # Statement by statement: the one before stays, the blocked one and the record do not.
    assert state(contacts_db) == (False, True, ["001", "002"])
    # Statement by statement: the one before stays, the blocked one and the record do not.
    assert state(contacts_db) == (False, True, ["001", "002"])


def test_a_waiting_run_names_the_first_and_gives_up_at_its_bound(
    contacts_db: str, tmp_path: Path
) -> None:
    slow = migration_sql("003", "slow", "SELECT pg_sleep(15);")
    folder = write_folder(tmp_path / "m", {"002_contacts.sql": CONTACTS, "003_slow.sql": slow})
    first = Run(contacts_db, folder)
    # pg_stat_activity shows the runner, and the file it is applying (it holds the lock).
    first_pid = _session_named(contacts_db, "alumdb migrate 003_slow.sql")
    waiting = Run(contacts_db, folder, "--wait-for-lock", "2")
    # A run's own connection is "alumdb migrate" (between files, and while it waits).
    assert _session_named(contacts_db, "alumdb migrate") != first_pid
    second = waiting.finish()
    assert second.returncode == 7, second
    for text in (second.stdout, second.stderr):
        assert f"pid {first_pid} " in text and "'alumdb migrate 003_slow.sql'" in text
    assert "--wait-for-lock" in second.stderr and "since" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert "Traceback" not in second.stderr
    done = first.finish()
    assert done.returncode == 0, done.stderr
    assert state(contacts_db)[2] == ["001", "002", "003"]


def _session_named(url: str, name: str) -> int:
    """The pid of the session whose application_name is ``name`` (waits for it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(GUARD * 20):
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                " AND datname = current_database()",
                (name,),
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.05)
        names = [str(r[0]) for r in conn.execute("SELECT application_name FROM pg_stat_activity")]
    pytest.fail(f"no session named {name!r} in pg_stat_activity: {names}")
