"""Runner 2 (issue 11): each test breaks one class of fault on purpose against real
PostgreSQL, and says in its docstring what it proves. Each fails on the runner
before the fix."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from alumdb import catalog, runner
from alumdb.errors import DriftError, MigrationFailed, UsageError
from tests.conftest import PgServer
from tests.helpers import ROOT, db_state, migration_sql, write_folder
from tests.integration.test_faults import HANG_GUARD, slow_folder, slow_run

pytestmark = pytest.mark.docker

Invoke = Callable[..., subprocess.CompletedProcess[str]]
OLD_TRACKING = """
CREATE TABLE schema_migrations (
    version VARCHAR(16) NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    executed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO schema_migrations (version, name) VALUES ('001', 'init');
"""


def columns(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'schema_migrations'::regclass"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ).fetchall()
    return [str(r[0]) for r in rows]


@pytest.mark.parametrize("dry_run", [False, True], ids=["migrate", "dry-run"])
def test_transaction_control_refused_before_upgrade_or_adopt(
    run_invoke: Invoke, fresh_db: str, tmp_path: Path, dry_run: bool
) -> None:
    """A file with COMMIT is refused (exit 3, file:line) before the tracking table is
    upgraded or any row adopted, and --dry-run refuses it the same way; the message
    does not claim a rollback. Before: the upgrade and adoption ran first, the error
    said exit 7 "rolled back", and --dry-run said "would apply"."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(OLD_TRACKING)
    folder = write_folder(
        tmp_path / "migrations",
        {"002_commit.sql": migration_sql("002", "commit", "CREATE TABLE c (id int);\nCOMMIT;")},
    )
    before = db_state(fresh_db)
    args = ("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    result = run_invoke(*args, *(["--dry-run"] if dry_run else []))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "002_commit.sql:7:1: transaction control statement" in result.stderr
    assert "rolled back" not in result.stderr
    assert "would apply" not in result.stdout
    assert columns(fresh_db) == ["version", "name", "executed_at"]  # not upgraded
    assert db_state(fresh_db) == before


def test_error_is_located_without_running_the_file_again(fresh_db: str, tmp_path: Path) -> None:
    """An error without a position (an existing table) is placed at its statement's
    line without executing the file a second time: a sequence (not transactional)
    advanced by the file's first statement moved once. Before: the runner replayed
    the file to find the statement (the sequence moved twice, DDL ran again without
    lock_timeout)."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE probe; CREATE TABLE dup (id int)")
    body = "-- a comment above\nSELECT nextval('probe');\n\n-- and here\nCREATE TABLE dup (id int);"
    folder = write_folder(
        tmp_path / "migrations", {"002_dup.sql": migration_sql("002", "dup", body)}
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        with pytest.raises(MigrationFailed) as failed:
            runner.migrate(conn, catalog.load(folder))
        last = conn.execute("SELECT last_value FROM probe").fetchone()
    assert str(failed.value).startswith('002_dup.sql:10:1: relation "dup" already exists')
    assert last == (1,)


def test_error_in_do_block_keeps_context_and_exact_line(fresh_db: str, tmp_path: Path) -> None:
    """An error inside a DO block below 30 lines of comments is placed on its own line
    by PostgreSQL's CONTEXT, which the message keeps (which routine, which line);
    an error in a function the file calls names that function. Before: the line was
    the comment block's first (30 lines off) and the CONTEXT was dropped."""
    comments = "\n".join(f"-- comment {n}" for n in range(30))
    body = (
        f"CREATE TABLE IF NOT EXISTS t (id int);\n{comments}\nDO $$\nBEGIN\n"
        "  PERFORM 1;\n  RAISE EXCEPTION 'boom in block';\nEND $$;"
    )
    folder = write_folder(tmp_path / "migrations", {"002_do.sql": migration_sql("002", "do", body)})
    with (
        psycopg.connect(fresh_db, autocommit=True) as conn,
        pytest.raises(MigrationFailed) as failed,
    ):
        runner.migrate(conn, catalog.load(folder))
    message = str(failed.value)
    raise_line = (
        migration_sql("002", "do", body).splitlines().index("  RAISE EXCEPTION 'boom in block';")
        + 1
    )
    assert message.startswith(f"002_do.sql:{raise_line}:1: boom in block"), message
    assert "CONTEXT: PL/pgSQL function inline_code_block line 4 at RAISE" in message

    routine = (
        "CREATE OR REPLACE FUNCTION explode() RETURNS void LANGUAGE plpgsql AS $$\n"
        "BEGIN\n  RAISE EXCEPTION 'boom in routine';\nEND $$;\n\nSELECT explode();"
    )
    (folder / "002_do.sql").write_text(migration_sql("002", "do", routine))
    with (
        psycopg.connect(fresh_db, autocommit=True) as conn,
        pytest.raises(MigrationFailed) as failed,
    ):
        runner.migrate(conn, catalog.load(folder))
    assert str(failed.value).startswith("002_do.sql:11:1: boom in routine"), failed.value
    assert "PL/pgSQL function explode() line 3 at RAISE" in str(failed.value)


def test_warnings_and_notices_of_a_file_reach_the_user(
    run_invoke: Invoke, fresh_db: str, tmp_path: Path
) -> None:
    """A file's RAISE WARNING and NOTICE are shown, named by file, as the migration runs
    (also for a no-transaction file). Before: they were dropped."""
    warn = "DO $$ BEGIN RAISE WARNING 'check the backfill'; RAISE NOTICE 'fyi'; END $$;"
    folder = write_folder(
        tmp_path / "migrations",
        {
            "002_warn.sql": migration_sql("002", "warn", warn),
            "003_idx.sql": "-- alumdb:no-transaction\n"
            + migration_sql("003", "idx", "DO $$ BEGIN RAISE WARNING 'outside'; END $$;"),
        },
    )
    result = run_invoke("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    assert result.returncode == 0, result.stderr
    assert "002_warn.sql: WARNING: check the backfill" in result.stdout
    assert "002_warn.sql: NOTICE: fyi" in result.stdout
    assert "003_idx.sql: WARNING: outside" in result.stdout


def test_invalid_index_left_by_concurrent_build_is_not_recorded(
    fresh_db: str, tmp_path: Path
) -> None:
    """A CREATE UNIQUE INDEX CONCURRENTLY that fails leaves an INVALID index; the error
    says so, and the re-run (whose IF NOT EXISTS skips the index) fails naming it and
    records nothing; once the data and the index are fixed the file applies. Before:
    the re-run recorded the file with the index unusable."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (1)")
    index = "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ux_t_v ON t (v);"
    folder = write_folder(
        tmp_path / "migrations",
        {"002_ux.sql": "-- alumdb:no-transaction\n" + migration_sql("002", "ux", index)},
    )
    for attempt in range(2):
        with (
            psycopg.connect(fresh_db, autocommit=True) as conn,
            pytest.raises(MigrationFailed) as failed,
        ):
            runner.migrate(conn, catalog.load(folder))
        assert "ux_t_v" in str(failed.value) and "INVALID" in str(failed.value), (
            attempt,
            failed.value,
        )
    assert [v for v, _ in db_state(fresh_db)[1]] == ["001"]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)")
        conn.execute("DROP INDEX CONCURRENTLY ux_t_v")
        runner.migrate(conn, catalog.load(folder))
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ux_t_v'::regclass"
        ).fetchone()
    assert valid == (True,)


def test_applied_meanwhile_from_other_content_is_refused(fresh_db: str, tmp_path: Path) -> None:
    """A run that waits for the lock and then finds its file recorded by the other run
    compares checksums: another file with the same number is a drift error (exit 6),
    not "applied meanwhile". Before: it skipped the file and exited 0."""
    folder = write_folder(
        tmp_path / "migrations",
        {"002_a.sql": migration_sql("002", "a", "CREATE TABLE IF NOT EXISTS a (id int);")},
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, catalog.load(folder), runner.Options(target="001"))
    other = psycopg.connect(fresh_db)
    other.execute("SELECT pg_advisory_xact_lock(%s)", (runner.ADVISORY_LOCK_KEY,))
    other.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ('002', 'a', %s)",
        ("f" * 64,),
    )
    waiting = threading.Event()
    outcome: list[BaseException | None] = []

    def seen(event: runner.Event) -> None:
        if event.kind == "waiting":
            waiting.set()

    def run() -> None:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            try:
                runner.migrate(conn, catalog.load(folder), on_event=seen)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert waiting.wait(HANG_GUARD)
    other.commit()
    other.close()
    thread.join(HANG_GUARD)
    assert isinstance(outcome[0], DriftError), outcome
    assert "002_a.sql: applied meanwhile by another run, but from different content" in str(
        outcome[0]
    )


def test_ctrl_c_mid_file_says_what_was_rolled_back(
    pg_server: PgServer, fresh_db: str, tmp_path: Path
) -> None:
    """SIGINT while a file runs: the file is rolled back, one line says so, and the exit
    code is 130. Before: nothing was printed and the exit code was 1."""
    folder = slow_folder(tmp_path / "migrations")
    with slow_run(pg_server, fresh_db, folder) as proc:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 130, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(
        "error: interrupted while applying 003_slow.sql: its transaction was rolled back"
    )
    assert "the 2 file(s) applied before it stay applied" in lines[0]
    assert [v for v, _ in db_state(fresh_db)[1]] == ["001", "002"]
    assert "slow_marker" not in db_state(fresh_db)[0]


def test_closed_output_pipe_is_no_traceback(fresh_db: str, tmp_path: Path) -> None:
    """`invoke migrate | head -0`: the reader goes away; the run still completes, with no
    traceback. Before: BrokenPipeError traceback, exit 1."""
    folder = write_folder(
        tmp_path / "migrations",
        {"002_a.sql": migration_sql("002", "a", "CREATE TABLE IF NOT EXISTS a (id int);")},
    )
    command = [
        sys.executable,
        "-m",
        "invoke",
        "migrate",
        "--database-url",
        fresh_db,
        "--migrations",
        str(folder),
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err
    assert [v for v, _ in db_state(fresh_db)[1]] == ["001", "002"]


def test_target_below_applied_does_not_say_up_to_date(
    run_invoke: Invoke, fresh_db: str, tmp_path: Path
) -> None:
    """--target below the applied version says files are pending after it. Before: "the
    database is up to date" while 003 was pending."""
    files = {
        f"00{n}_t{n}.sql": migration_sql(
            f"00{n}", f"t{n}", f"CREATE TABLE IF NOT EXISTS t{n} (id int);"
        )
        for n in (2, 3)
    }
    folder = write_folder(tmp_path / "migrations", files)
    args = ("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    assert run_invoke(*args, "--target", "002").returncode == 0
    result = run_invoke(*args, "--target", "001")
    assert result.returncode == 0, result.stderr
    assert "up to date" not in result.stdout
    assert (
        "nothing to apply up to --target 001: 2 applied; "
        "1 pending after the target (003_t3.sql first)" in result.stdout
    )


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(folder), *args],
        check=True,
        capture_output=True,
    )


def test_accept_checksum_only_for_edits_the_database_cannot_see(
    fresh_db: str, tmp_path: Path
) -> None:
    """accept-checksum accepts a comment and layout edit of an applied file, but refuses
    an edit that adds DDL, naming the statement and its line; the applied content is
    read from git. Before: any edit was accepted and logged as harmless."""
    folder = write_folder(
        tmp_path / "migrations",
        {"002_a.sql": migration_sql("002", "a", "CREATE TABLE IF NOT EXISTS a (id int);")},
    )
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "applied")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, catalog.load(folder))
    path = folder / "002_a.sql"
    applied = path.read_text()

    path.write_text(
        applied.replace(
            "CREATE TABLE IF NOT EXISTS a (id int);",
            "-- why\ncreate table if not exists a (\n  id int\n);",
        )
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        old, new = runner.accept_checksum(conn, catalog.load(folder), "002", "comment")
    assert old != new
    git(folder, "commit", "-q", "-am", "comment")

    path.write_text(
        applied.replace("(id int);", "(id int);\nCREATE TABLE IF NOT EXISTS b (id int);")
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn, pytest.raises(UsageError) as refused:
        runner.accept_checksum(conn, catalog.load(folder), "002", "just a comment")
    assert str(refused.value).startswith("002_a.sql:7:1: statement 2 differs"), refused.value


@pytest.mark.parametrize("variant", ["unresolvable-host", "ssl-required"], ids=["dns", "ssl"])
def test_failures_waiting_cannot_fix_are_not_retried(
    run_invoke: Invoke, fresh_db: str, tmp_path: Path, variant: str
) -> None:
    """A host name that does not resolve, or SSL required by a server without it, fails
    at once (exit 5), not after the whole --wait (the subprocess timeout is a hang
    guard well below it). Before: both were retried for the whole --wait."""
    folder = write_folder(tmp_path / "migrations", {})
    url = (
        "postgresql://u@no-such-host.invalid:5432/db"
        if variant == "unresolvable-host"
        else psycopg.conninfo.make_conninfo(fresh_db, sslmode="require")
    )
    result = run_invoke(
        "migrate", "--database-url", url, "--migrations", str(folder), "--wait", "120",
        timeout=40,
    )  # fmt: skip
    assert result.returncode == 5, result.stdout + result.stderr
    assert "after waiting" not in result.stderr
