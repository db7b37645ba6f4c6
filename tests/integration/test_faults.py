"""Faults on purpose: a killed runner, a stopped database, an unreachable engine,
refused credentials, a closed port and a healthcheck that never passes.

Times here are hang guards (a subprocess timeout), not benchmarks: the figures the
README quotes are measured by hand and in bench/.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import docker
import psycopg
import pytest

from alumdb import database, environment, refusal, runner
from alumdb.errors import DatabaseUnavailableError, EnvironmentFailure
from tests.conftest import PgServer
from tests.helpers import ROOT, db_state, migration_sql, write_folder

pytestmark = pytest.mark.docker

Invoke = Callable[..., subprocess.CompletedProcess[str]]
SLOW_SETTING = "alumdb_test.slow"
LOCK_CLASSID = runner.ADVISORY_LOCK_KEY >> 32
LOCK_OBJID = runner.ADVISORY_LOCK_KEY & 0xFFFFFFFF
HANG_GUARD = 20.0


def slow_folder(directory: Path) -> Path:
    """002 quick, 003 sleeps 60 s only when the run sets alumdb_test.slow=on, 004 quick.

    The sleep depends on a setting, not on the file, so the run after a fault applies
    the very same bytes (same checksum) quickly.
    """
    ran = "CREATE TABLE IF NOT EXISTS ran (version text NOT NULL);\n"
    return write_folder(
        directory,
        {
            "002_before.sql": migration_sql(
                "002", "before", ran + "INSERT INTO ran VALUES ('002');"
            ),
            "003_slow.sql": migration_sql(
                "003",
                "slow",
                ran + "CREATE TABLE IF NOT EXISTS slow_marker (id int);\n"
                "INSERT INTO ran VALUES ('003');\n"
                f"SELECT pg_sleep(CASE WHEN current_setting('{SLOW_SETTING}', true) = 'on'"
                " THEN 60 ELSE 0 END);",
            ),
            "004_after.sql": migration_sql("004", "after", ran + "INSERT INTO ran VALUES ('004');"),
        },
    )


@contextlib.contextmanager
def slow_run(pg_server: PgServer, url: str, folder: Path) -> Iterator[subprocess.Popen[str]]:
    """`invoke migrate` with alumdb_test.slow=on, handed over once 003 is sleeping."""
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environ["PGOPTIONS"] = f"-c {SLOW_SETTING}=on"
    command = [sys.executable, "-m", "invoke", "migrate", "--database-url", url]
    proc = subprocess.Popen(
        [*command, "--migrations", str(folder)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: sleeping(pg_server.url()), "003_slow.sql to be running")
        yield proc
    finally:
        proc.kill()  # harmless when it has ended
        if proc.stdout is not None and not proc.stdout.closed:
            proc.communicate()


def assert_next_run_completes(run_invoke: Invoke, url: str, folder: Path) -> None:
    result = run_invoke("migrate", "--database-url", url, "--migrations", str(folder))
    assert result.returncode == 0, result.stderr
    assert "done: 2 applied" in result.stdout
    assert ran(url) == ["002", "003", "004"]  # nothing applied twice


def wait_for(condition: Callable[[], bool], what: str, timeout: float = HANG_GUARD) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def sleeping(admin_url: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            # Only 003 sleeps. Not the query text: the runner sends several files in one
            # message, and pg_stat_activity shows only its first kilobyte.
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'alumdb migrate 003_slow.sql'"
            " AND wait_event = 'PgSleep' AND state = 'active'"
        ).fetchone()
    return bool(row and row[0])


def lock_holders(admin_url: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = %s AND objid = %s",
            (LOCK_CLASSID, LOCK_OBJID),
        ).fetchone()
    return int(row[0]) if row else 0


def ran(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM ran ORDER BY 1")]


def test_sigkill_mid_migration_leaves_nothing_and_frees_the_lock(
    pg_server: PgServer, fresh_db: str, tmp_path: Path, run_invoke: Invoke
) -> None:
    folder = slow_folder(tmp_path / "migrations")
    with slow_run(pg_server, fresh_db, folder) as proc:
        assert lock_holders(pg_server.url()) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=HANG_GUARD)
    assert proc.returncode == -signal.SIGKILL

    # The server notices the dead client (client_connection_check_interval), rolls the
    # file back and frees the lock, without waiting for the 60 s statement to end.
    wait_for(lambda: lock_holders(pg_server.url()) == 0, "the advisory lock to be freed", 10)
    relations, rows = db_state(fresh_db)
    assert "slow_marker" not in relations
    assert [v for v, _ in rows] == ["001", "002"]
    assert ran(fresh_db) == ["002"]
    assert_next_run_completes(run_invoke, fresh_db, folder)


def test_database_stopped_mid_migration(
    pg_server: PgServer, fresh_db: str, tmp_path: Path, run_invoke: Invoke
) -> None:
    folder = slow_folder(tmp_path / "migrations")
    with slow_run(pg_server, fresh_db, folder) as proc:
        subprocess.run(["docker", "stop", pg_server.container], check=True, capture_output=True)
        _, err = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 7
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: 003_slow.sql: lost the connection to the database")
    assert "run migrate again" in lines[0]

    up = run_invoke("up")
    assert up.returncode == 0, up.stderr
    assert "postgres started" in up.stdout

    assert_next_run_completes(run_invoke, fresh_db, folder)


def test_server_cut_off_mid_file_is_reported_then_bounded(
    pg_server: PgServer, fresh_db: str, tmp_path: Path
) -> None:
    """A network partition, not a stopped server: no FIN, no RST, only silence.

    The run reaches the server through a private network of its own; while 003 sleeps
    the server is cut off that network. Before the cut the run says what the server is
    doing; after it, the connection's TCP keepalives (short ones, from the URL, as any
    libpq parameter can be) end the run with one line instead of a wait for ever.
    """
    folder = slow_folder(tmp_path / "migrations")
    client = environment.docker_client()
    network = client.networks.create(f"{pg_server.env.project}-cut-{uuid.uuid4().hex[:8]}")
    try:
        network.connect(pg_server.container)
        container = client.containers.get(pg_server.container)
        address = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        url = psycopg.conninfo.make_conninfo(
            fresh_db, host=address, port=5432, keepalives_idle=1, keepalives_interval=1,
            keepalives_count=2, tcp_user_timeout=2000,
        )  # fmt: skip
        with slow_run(pg_server, url, folder) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            lines: queue.Queue[str] = queue.Queue()
            reader = threading.Thread(target=copy_lines, args=(proc.stdout, lines))
            reader.start()
            said = next_line(lines, lambda x: x.startswith("  running 003_slow.sql:"))
            # Which file, for how long, what the server is doing, and the bound.
            assert "s so far; the server is working on it (wait event Timeout:PgSleep)" in said
            assert said.endswith("the run fails within 3s\n")
            network.disconnect(pg_server.container, force=True)
            proc.wait(timeout=HANG_GUARD)
            error = proc.stderr.read()
            reader.join()
        assert proc.returncode == 7, error
        assert len(error.strip().splitlines()) == 1, error
        assert error.startswith("error: 003_slow.sql: lost the connection to the database while")
        assert "run migrate again once the database is back" in error
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as conn:  # the server never knew
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with contextlib.suppress(docker.errors.APIError):
            network.disconnect(pg_server.container, force=True)
        network.remove()


def copy_lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def next_line(lines: queue.Queue[str], wanted: Callable[[str], bool]) -> str:
    """The first line of ``lines`` that is ``wanted`` (within the hang guard)."""
    deadline = time.monotonic() + HANG_GUARD
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if wanted(line):
            return line
    raise AssertionError("timed out waiting for the line")


@pytest.mark.parametrize(
    "docker_host",
    ["unix://{tmp}/nothing-listens.sock", "tcp://127.0.0.1:{port}"],
    ids=["dead-socket", "closed-tcp-port"],
)
@pytest.mark.parametrize("task", ["up", "migrate", "status"])
def test_docker_engine_unreachable(
    run_invoke: Invoke, tmp_path: Path, docker_host: str, task: str
) -> None:
    host = docker_host.format(tmp=tmp_path, port=environment.free_port())
    result = run_invoke(task, env={"DOCKER_HOST": host}, timeout=HANG_GUARD)
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: the Docker Engine is not reachable at {host}: start Docker")


def test_wrong_password_fails_at_once_without_showing_it(
    pg_server: PgServer, fresh_db: str, run_invoke: Invoke
) -> None:
    wrong = fresh_db.replace(pg_server.password, "not-the-password-42")
    result = run_invoke("migrate", "--database-url", wrong, "--wait", "30", timeout=HANG_GUARD)
    assert result.returncode == 5
    assert "password authentication failed" in result.stderr
    assert "not-the-password-42" not in result.stdout + result.stderr
    assert "***" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("role", "dbname", "code", "final"),
    [
        ("wrong-password", None, "28P01", True),
        ("no-login", None, "28000", True),
        ("alumdbtest_nobody", None, "28P01", True),  # no such role: the same answer
        (None, "no_such_db", "3D000", True),
        ("no-slot", None, "53300", False),  # CONNECTION LIMIT 0: may pass, so waited for
    ],
    ids=["wrong-password", "role-without-login", "unknown-role", "unknown-database", "full"],
)
def test_refused_logins_are_judged_by_sqlstate(
    fresh_db: str, role: str | None, dbname: str | None, code: str, final: bool
) -> None:
    """The SQLSTATE the server sends decides, not the text (which lc_messages translates):
    final refusals fail at once, a refusal that may pass is waited for."""
    suffix = uuid.uuid4().hex[:8]
    names = {"wrong-password": f"alumdbtest_pw_{suffix}", "no-login": f"alumdbtest_nl_{suffix}",
             "no-slot": f"alumdbtest_full_{suffix}"}  # fmt: skip
    params = database.parse_url(fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {names['wrong-password']} LOGIN PASSWORD 'right'")
        admin.execute(f"CREATE ROLE {names['no-login']} NOLOGIN PASSWORD 'right'")
        admin.execute(f"CREATE ROLE {names['no-slot']} LOGIN PASSWORD 'right' CONNECTION LIMIT 0")
        try:
            user = names.get(role or "", role or params["user"])
            password = "wrong" if role == "wrong-password" else "right" if role else None
            target = {**params, "user": user, "dbname": dbname or params["dbname"]}
            if password:
                target["password"] = password
            assert refusal.sqlstate(target, timeout=5) == code
            with pytest.raises(DatabaseUnavailableError) as caught:
                database.connect(target, wait=1.5)
        finally:
            for name in names.values():
                admin.execute(f"DROP ROLE IF EXISTS {name}")
    message = str(caught.value)
    assert f"(SQLSTATE {code})" in message
    assert ("after waiting" not in message) is final  # waited only when it may pass
    assert "wrong" not in message and "right" not in message  # no password shown


def test_closed_port_fails_after_the_wait(run_invoke: Invoke) -> None:
    url = f"postgresql://alumoutreach:secret-pw@127.0.0.1:{environment.free_port()}/alumoutreach"
    result = run_invoke("migrate", "--database-url", url, "--wait", "1", timeout=HANG_GUARD)
    assert result.returncode == 5
    line = result.stderr.strip()
    assert line.startswith("error: cannot connect to postgresql://alumoutreach:***@127.0.0.1:")
    assert "after waiting 1s" in line
    assert "waiting up to 1s for postgresql://alumoutreach:***@127.0.0.1:" in result.stdout
    assert "secret-pw" not in result.stdout + result.stderr


def test_healthcheck_never_passing(pg_server: PgServer, tmp_path: Path) -> None:
    """A compose file whose healthcheck always fails: a clear error with the container's logs."""
    project = tmp_path / "unhealthy"
    project.mkdir()
    text = (ROOT / "docker-compose.dev.yml").read_text()
    healthcheck = '["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", "alumoutreach"'
    assert healthcheck in text
    text = text.replace(healthcheck, '["CMD", "false"')
    (project / "docker-compose.dev.yml").write_text(text)
    env = environment.resolve("dev", project, environment.scratch_settings("alumdbsick"))
    del pg_server  # the session server proves the image and compose are ready
    client = environment.docker_client()
    try:
        with pytest.raises(EnvironmentFailure) as failure:
            environment.up(env, client, timeout=5)
    finally:
        environment.down(env, volumes=True)
    message = str(failure.value)
    assert message.startswith(
        f"container {env.project}-postgres was not healthy after 5s (health: starting); "
        "its last log lines:\n"
    )
    assert "database system is ready to accept connections" in message
