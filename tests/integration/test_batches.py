"""Several files per message: the runner's batching against real PostgreSQL.

The runner sends up to ``runner.BATCH_FILES`` files in one message, each file still
its own transaction. These tests break that on purpose: an error in a file in the
middle of a message, a syntax error (which makes the server refuse the whole message
before running any of it), a file that would swallow the next one, more files than
one message holds, and tracking rows a file must not write.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from alumdb import catalog, runner
from alumdb.errors import MigrationFailed, UsageError
from alumdb.runner import locking
from tests.helpers import db_state, migration_sql, write_folder

pytestmark = pytest.mark.docker


@pytest.fixture(params=["temporary-functions", "do-blocks"])
def db(request: pytest.FixtureRequest, fresh_db: str) -> Iterator[str]:
    """A fresh database, migrated as the superuser or as an owner without TEMPORARY.

    The runner wraps each file in two temporary PL/pgSQL functions when the session
    may create them, and in DO blocks with the same bodies when it may not; every test
    here runs both ways.
    """
    if request.param == "temporary-functions":
        yield fresh_db
        return
    user = f"owner_{uuid.uuid4().hex[:8]}"
    role = sql.Identifier(user)
    password = secrets.token_hex(8)
    name = sql.Identifier(str(psycopg.conninfo.conninfo_to_dict(fresh_db)["dbname"]))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for statement in (
            "CREATE ROLE {role} LOGIN PASSWORD {password}",
            "ALTER DATABASE {name} OWNER TO {role}",
            "REVOKE TEMPORARY ON DATABASE {name} FROM PUBLIC, {role}",
        ):
            conn.execute(
                sql.SQL(statement).format(role=role, name=name, password=sql.Literal(password))
            )
    url = psycopg.conninfo.make_conninfo(fresh_db, user=user, password=password)
    with psycopg.connect(url) as conn:
        assert not locking.may_create_temporary(conn)
    try:
        yield url
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            for statement in ("REASSIGN OWNED BY {role} TO CURRENT_USER", "DROP OWNED BY {role}"):
                conn.execute(sql.SQL(statement).format(role=role))
            conn.execute(sql.SQL("DROP ROLE {role}").format(role=role))


def table_file(version: str) -> str:
    return migration_sql(version, f"t{version}", f"CREATE TABLE IF NOT EXISTS t{version} (id int);")


def folder_with(tmp_path: Path, count: int, **special: str) -> Path:
    """Files 002..count+1 creating table tVVV, with ``special`` bodies by version."""
    files = {}
    for number in range(2, count + 2):
        version = f"{number:03d}"
        body = special.get(f"v{version}")
        text = table_file(version) if body is None else migration_sql(version, f"t{version}", body)
        files[f"{version}_t{version}.sql"] = text
    return write_folder(tmp_path / "migrations", files)


def migrate(url: str, folder: Path) -> tuple[runner.Report, list[runner.Event]]:
    events: list[runner.Event] = []
    with psycopg.connect(url, autocommit=True) as conn:
        report = runner.migrate(conn, catalog.load(folder), on_event=events.append)
    return report, events


def migrate_fails(url: str, folder: Path) -> tuple[str, list[runner.Event]]:
    events: list[runner.Event] = []
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(MigrationFailed) as failed:
        runner.migrate(conn, catalog.load(folder), on_event=events.append)
    return str(failed.value), events


def recorded(url: str) -> list[str]:
    return [version for version, _ in db_state(url)[1]]


def applied_events(events: list[runner.Event]) -> list[str]:
    return [e.migration.version for e in events if e.kind == "applied" and e.migration]


def test_more_files_than_one_message_holds(db: str, tmp_path: Path) -> None:
    count = runner.BATCH_FILES * 2 + 7
    folder = folder_with(tmp_path, count, v050="SELECT pg_sleep(0.2);")
    report, events = migrate(db, folder)

    versions = [f"{n:03d}" for n in range(1, count + 2)]
    assert [m.version for m, _ in report.applied] == versions
    assert applied_events(events) == versions  # each once, in order, as it commits
    assert recorded(db) == versions
    with psycopg.connect(db) as conn:
        rows: dict[str, int] = dict(
            conn.execute("SELECT version, duration_ms FROM schema_migrations").fetchall()
        )
    assert all(isinstance(ms, int) and ms >= 0 for ms in rows.values())
    assert rows["050"] >= 200  # the server's own time for the file, sleep included
    seconds = {m.version: s for m, s in report.applied}
    assert seconds["050"] >= 0.2


def test_error_in_the_middle_of_a_message(db: str, tmp_path: Path) -> None:
    """No position from the server: the line comes from the statements that completed
    before the error (nothing is run again)."""
    duplicate = "CREATE TABLE dup (id int);\nCREATE TABLE dup (id int);"
    folder = folder_with(tmp_path, 8, v005=duplicate)
    message, events = migrate_fails(db, folder)

    assert message.startswith('005_t005.sql:7:1: relation "dup" already exists'), message
    assert applied_events(events) == ["001", "002", "003", "004"]
    assert recorded(db) == ["001", "002", "003", "004"]
    relations = db_state(db)[0]
    assert "t004" in relations and "dup" not in relations and "t006" not in relations


def test_syntax_error_late_in_a_message(db: str, tmp_path: Path) -> None:
    """The server refuses the whole message: the files before the bad one still apply."""
    folder = folder_with(tmp_path, 8, v007="CREATE TABLE IF NOT EXISTS t007 (id int;")
    message, events = migrate_fails(db, folder)

    assert message.startswith('007_t007.sql:6:40: syntax error at or near ";"'), message
    assert "SQLSTATE 42601" in message
    assert applied_events(events) == ["001", "002", "003", "004", "005", "006"]
    assert recorded(db) == ["001", "002", "003", "004", "005", "006"]

    (folder / "007_t007.sql").write_text(table_file("007"))  # fixed: the run goes on
    report, _ = migrate(db, folder)
    assert [m.version for m, _ in report.applied] == ["007", "008", "009"]


def test_unterminated_quote_does_not_swallow_the_next_file(db: str, tmp_path: Path) -> None:
    """A file ending inside a dollar quote, and a next file that closes it.

    Together they parse, so in one message 004's DDL would run in 003's transaction and
    004 would be recorded without 003: a file that does not parse on its own travels
    alone, and the server names its error.
    """
    folder = folder_with(
        tmp_path,
        4,
        v003="CREATE TABLE IF NOT EXISTS t003 (id int);\nSELECT $x$ unterminated",
        v004="SELECT $x$;\nCREATE TABLE IF NOT EXISTS t004 (id int);",
    )
    message, events = migrate_fails(db, folder)

    assert message.startswith("003_t003.sql:7:8: unterminated dollar-quoted string"), message
    assert applied_events(events) == ["001", "002"]
    assert recorded(db) == ["001", "002"]
    relations = db_state(db)[0]
    assert "t002" in relations and "t003" not in relations and "t004" not in relations


def test_file_writing_another_tracking_row_beside_its_own(db: str, tmp_path: Path) -> None:
    """The server-side guard: a row the preflight cannot read (not a VALUES list;
    test_bad_input's tracking-insert case covers those, before anything runs)."""
    extra = (
        "CREATE TABLE IF NOT EXISTS t003 (id int);\n"
        "INSERT INTO schema_migrations (version, name) SELECT '900', 'sneaky';"
    )
    folder = folder_with(tmp_path, 3, v003=extra)
    message, _ = migrate_fails(db, folder)

    assert message.startswith("003_t003.sql: the tracking insert records version '900'"), message
    assert recorded(db) == ["001", "002"]


def test_file_without_a_tracking_insert_is_recorded(db: str, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, 3)
    (folder / "003_t003.sql").write_text("CREATE TABLE IF NOT EXISTS t003 (id int);\n")
    migrate(db, folder)

    assert recorded(db) == ["001", "002", "003", "004"]


def test_helpers_are_temporary(fresh_db: str, tmp_path: Path) -> None:
    """The helper functions live in the session's temporary schema, nowhere else."""
    folder = folder_with(tmp_path, 2)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, catalog.load(folder))
        found = conn.execute(
            "SELECT proname::text, pronamespace = pg_my_temp_schema() FROM pg_proc"
            " WHERE proname LIKE 'alumdb%' ORDER BY 1"
        ).fetchall()
    assert found == [("alumdb_close", True), ("alumdb_open", True)]


def test_a_connection_outside_autocommit_is_refused(fresh_db: str, tmp_path: Path) -> None:
    """The runner opens each transaction itself; psycopg's implicit one would nest them."""
    files = {"002_t2.sql": migration_sql("002", "t2", "CREATE TABLE t2 (a int);")}
    directory = write_folder(tmp_path / "m", files)
    with psycopg.connect(fresh_db) as conn, pytest.raises(UsageError) as refused:
        runner.migrate(conn, catalog.load(directory))
    assert "needs an autocommit connection" in str(refused.value)
    assert db_state(fresh_db) == ([], [])
