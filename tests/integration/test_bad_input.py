"""A catalogue of bad input: each case is a clear one-line error naming what is wrong,
a non-zero exit, and the database and the migrations folder exactly as they were.

Every case starts from a database with 001 (the real one) and 002_base applied by the
runner, and a folder holding those two files; the case then damages the folder (or
passes a bad argument) and runs `invoke`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from alumdb import catalog, runner
from tests.helpers import db_state, folder_snapshot, migration_sql, write_folder

pytestmark = pytest.mark.docker

Invoke = Callable[..., subprocess.CompletedProcess[str]]
BASE = {"002_base.sql": migration_sql("002", "base", "CREATE TABLE IF NOT EXISTS base (id int);")}


def sql(version: str, name: str, ddl: str = "CREATE TABLE IF NOT EXISTS x (id int);") -> str:
    return migration_sql(version, name, ddl)


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str | bytes] = field(default_factory=dict)  # added after the base run
    args: tuple[str, ...] = ("migrate",)
    code: int = 3
    message: str = ""
    damage: Callable[[Path], None] | None = None  # anything else done to the folder
    lines: int = 1  # stderr lines (one per problem)


def _delete_base(folder: Path) -> None:
    (folder / "002_base.sql").unlink()


def _edit_base(folder: Path) -> None:
    path = folder / "002_base.sql"
    path.write_text(path.read_text().replace("(id int)", "(id bigint)"))


def _empty_folder(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()


def _remove_folder(folder: Path) -> None:
    shutil.rmtree(folder)


def _sql_directory(folder: Path) -> None:
    (folder / "003_dir.sql").mkdir()


CASES = [
    Case("not-NNN_name", {"3_add notes.sql": "SELECT 1;"}, message="3_add notes.sql: not a migration file name; rename it NNN_snake_case.sql"),  # noqa: E501
    Case("not-zero-padded", {"3_notes.sql": sql("003", "notes")}, message="3_notes.sql: version '3' is not zero-padded to three digits; rename it 003_notes.sql"),  # noqa: E501
    Case("capitals", {"003_AddNotes.sql": sql("003", "AddNotes")}, message="003_AddNotes.sql: not a migration file name"),  # noqa: E501
    Case("version-000", {"000_zero.sql": sql("000", "zero")}, message="000_zero.sql: version 000 is not allowed"),  # noqa: E501
    Case("duplicate-number", {"003_a.sql": sql("003", "a"), "003_b.sql": sql("003", "b")}, message="003_a.sql, 003_b.sql: 2 files share version 003; renumber all but one"),  # noqa: E501
    Case("empty-file", {"003_empty.sql": "\n  \n"}, message="003_empty.sql: the file is empty"),
    Case("not-utf8", {"003_latin1.sql": "-- caf\xe9\nSELECT 1;\n".encode("latin-1")}, message="003_latin1.sql:1: not valid UTF-8 (byte 0xe9 at offset 6); save the file as UTF-8"),  # noqa: E501
    Case("byte-order-mark", {"003_bom.sql": b"\xef\xbb\xbf" + sql("003", "bom").encode()}, message="003_bom.sql:1: starts with a UTF-8 byte-order mark"),  # noqa: E501
    Case("nul-byte", {"003_nul.sql": b"SELECT 1;\n\x00\n"}, message="003_nul.sql:2: contains a NUL byte"),  # noqa: E501
    Case("directory-named-sql", damage=_sql_directory, message="003_dir.sql: is not a regular file"),  # noqa: E501
    Case("two-problems-at-once", {"3_a.sql": "SELECT 1;", "004_b.sql": b""}, message="2 problems in the migrations folder:", lines=3),  # noqa: E501
    Case("syntax-error-at-line-7", {"003_typo.sql": sql("003", "typo", "CREATE TABLE IF NOT EXISTS ok (id int);\nCREATE TABLE IF NOT EXISTS typo (id int,);\nCREATE INDEX IF NOT EXISTS idx_typo ON typo (id);")}, code=7, message='error: 003_typo.sql:7:41: syntax error at or near \")\"; SQLSTATE 42601'),  # noqa: E501
    Case("tracking-insert-other-version", {"003_notes.sql": sql("003", "notes").replace("VALUES ('003'", "VALUES ('004'")}, message="003_notes.sql:9:1: the tracking insert records version '004', name 'notes', not '003', 'notes'"),  # noqa: E501
    Case("transaction-control", {"003_commit.sql": sql("003", "commit", "CREATE TABLE IF NOT EXISTS c (id int);\nCOMMIT;")}, message="003_commit.sql:7:1: transaction control statement in a migration"),  # noqa: E501
    Case("applied-file-edited", damage=_edit_base, code=6, message="002_base.sql: changed (the file's content changed"),  # noqa: E501
    Case("applied-file-deleted", damage=_delete_base, code=6, message="002_base: missing (applied, but no file on disk"),  # noqa: E501
    Case("pending-below-applied", {"004_later.sql": sql("004", "later")}, code=6, message="003_x.sql: pending but numbered below the highest applied version 004"),  # noqa: E501
    Case("folder-missing", damage=_remove_folder, message="the migrations folder does not exist; create it or pass --migrations"),  # noqa: E501
    Case("folder-empty", damage=_empty_folder, message="no migration files (NNN_name.sql) in this folder"),  # noqa: E501
    Case("target-unknown", args=("migrate", "--target", "042"), code=2, message="--target '042': no migration with that version"),  # noqa: E501
    Case("target-not-a-number", args=("migrate", "--target", "latest"), code=2, message="--target 'latest'"),  # noqa: E501
    Case("env-unknown", args=("migrate", "--env", "staging"), code=2, message="--env 'staging': unknown environment; choose one of dev, prod"),  # noqa: E501
    Case("env-and-url", args=("migrate", "--env", "dev", "--database-url", "postgresql://u@h/d"), code=2, message="pass either --env or --database-url, not both"),  # noqa: E501
    Case("url-not-postgres", args=("migrate", "--database-url", "mysql://root@localhost/app"), code=2, message="--database-url: scheme 'mysql' is not PostgreSQL"),  # noqa: E501
    Case("url-bad-port", args=("migrate", "--database-url", "postgresql://u:pw@localhost:54x2/db"), code=2, message="--database-url does not parse (port '54x2' is not a number 1-65535)"),  # noqa: E501
    Case("url-garbage", args=("status", "--database-url", "not a url"), code=2, message="--database-url does not parse"),  # noqa: E501
    Case("lock-timeout-negative", args=("migrate", "--lock-timeout", "-1"), code=2, message="--lock-timeout '-1': must not be negative"),  # noqa: E501
    Case("wait-not-a-number", args=("migrate", "--wait", "soon"), code=2, message="--wait 'soon': not a number of seconds"),  # noqa: E501
    Case("lock-timeout-zero", args=("migrate", "--lock-timeout", "0"), code=2, message="--lock-timeout 0: must be at least 0.001s"),  # noqa: E501
    Case("lock-budget-infinite", args=("migrate", "--lock-budget=inf"), code=2, message="--lock-budget inf: must be 0 or more seconds, and finite"),  # noqa: E501
    Case("version-too-long", {"12345678901234567_long.sql": sql("12345678901234567", "long")}, message="12345678901234567_long.sql: version 12345678901234567 has 17 digits"),  # noqa: E501
    Case("no-transaction-syntax-error", {"003_idx.sql": "-- alumdb:no-transaction\nSELECT (;\n"}, message="003_idx.sql:2:9: syntax error"),  # noqa: E501
    Case("discard", {"003_discard.sql": sql("003", "discard", "DISCARD ALL;")}, message="003_discard.sql:6:1: DISCARD in a migration"),  # noqa: E501
    Case("url-password-in-bad-url", args=("migrate", "--database-url", "postgresql://u:s3cr3t@[::1/db"), code=2, message="--database-url does not parse"),  # noqa: E501
    Case("accept-checksum-no-reason", args=("accept-checksum", "002"), code=2, message="--reason is required"),  # noqa: E501
    Case("accept-checksum-unchanged", args=("accept-checksum", "002", "--reason", "tidy"), code=2, message="002_base.sql: is applied, not changed; there is no checksum to accept"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(run_invoke: Invoke, fresh_db: str, tmp_path: Path, case: Case) -> None:
    folder = write_folder(tmp_path / "migrations", dict(BASE))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, catalog.load(folder))
    if case.id == "pending-below-applied":  # 004 applied first, then 003 appears below it
        write_folder(folder, dict(case.files), base=False)
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            runner.migrate(conn, catalog.load(folder))
        write_folder(folder, {"003_x.sql": sql("003", "x")}, base=False)
    else:
        write_folder(folder, dict(case.files), base=False)
    if case.damage is not None:
        case.damage(folder)
    folder_before, db_before = folder_snapshot(folder), db_state(fresh_db)

    url = (
        ()
        if "--database-url" in case.args or "--env" in case.args
        else ("--database-url", fresh_db)
    )
    result = run_invoke(*case.args, *url, "--migrations", str(folder))

    assert result.returncode == case.code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == case.lines, result.stderr
    assert lines[0].startswith("error: ")
    assert case.message in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert folder_snapshot(folder) == folder_before
    assert db_state(fresh_db) == db_before


def test_numeric_order_1000_after_999(run_invoke: Invoke, fresh_db: str, tmp_path: Path) -> None:
    """Not an error: 1000 sorts after 999 (text order would put it first)."""
    folder = write_folder(
        tmp_path / "migrations",
        {
            "999_y.sql": sql("999", "y", "CREATE TABLE IF NOT EXISTS y (id int);"),
            "1000_x.sql": sql("1000", "x", "ALTER TABLE y ADD COLUMN IF NOT EXISTS x int;"),
        },
    )
    result = run_invoke("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    assert result.returncode == 0, result.stderr
    applied = [line.split()[1] for line in result.stdout.splitlines() if "applied   " in line]
    assert applied == ["001_init.sql", "999_y.sql", "1000_x.sql"]
    with psycopg.connect(fresh_db) as conn:
        spec_order = [
            r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]
    assert spec_order == ["001", "999", "1000"]  # the spec's own query sorts numerically too


def test_crlf_line_endings_are_the_same_migration(
    run_invoke: Invoke, fresh_db: str, tmp_path: Path
) -> None:
    """A checkout that turns LF into CRLF changes no checksum: nothing is refused or rerun."""
    folder = write_folder(tmp_path / "migrations", dict(BASE))
    first = run_invoke("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    assert first.returncode == 0, first.stderr
    for path in folder.glob("*.sql"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    again = run_invoke("migrate", "--database-url", fresh_db, "--migrations", str(folder))
    assert again.returncode == 0, again.stderr
    assert "nothing to do: 2 applied" in again.stdout
    status = run_invoke("status", "--database-url", fresh_db, "--migrations", str(folder))
    assert status.returncode == 0, status.stdout
