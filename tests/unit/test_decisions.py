"""Each decision about the migrations folder is made once, and every caller agrees:
which files are migrations, how a file is decoded, duplicate numbers, and the
``-- alumdb:no-transaction`` marker (the engine and the compose loop)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alumdb import catalog, lint
from alumdb.errors import CatalogError
from tests.helpers import ROOT, migration_sql, write_folder

COMPOSE_FILES = ("docker-compose.dev.yml", "docker-compose.prod.yml")


def _invoke_lint(folder: Path) -> subprocess.CompletedProcess[str]:
    invoke = Path(sys.executable).parent / "invoke"
    return subprocess.run(
        [str(invoke), "lint", "--no-squawk", "--migrations", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_hidden_and_other_files_are_not_migrations(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "m", {"002_two.sql": migration_sql("002", "two", "")})
    (folder / ".hidden.sql").write_text("garbage that is no migration", encoding="utf-8")
    (folder / ".002_two.sql.swp").write_text("editor swap", encoding="utf-8")
    (folder / "README.md").write_text("# readme\n", encoding="utf-8")
    (folder / "_template.sql.tmpl").write_text("{filename}\n", encoding="utf-8")
    listed = [p.name for p in catalog.migration_paths(folder)]
    assert listed == ["001_init.sql", "002_two.sql"]
    assert [m.filename for m in catalog.load(folder)] == listed
    assert lint.lint_directory(folder) == []
    result = _invoke_lint(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 files checked" in result.stdout


def test_an_empty_file_is_refused_by_catalog_and_lint(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "m", {"002_empty.sql": "\n  \n"})
    with pytest.raises(CatalogError, match=r"002_empty\.sql: the file is empty"):
        catalog.load(folder)
    findings = lint.lint_directory(folder)
    assert [(f.path.name, f.rule) for f in findings] == [("002_empty.sql", "syntax")]
    assert "the file is empty" in findings[0].message
    result = _invoke_lint(folder)
    assert result.returncode == 1
    assert "002_empty.sql:1:1 syntax the file is empty" in result.stdout


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"-- caf\xe9\nSELECT 1;\n", "not valid UTF-8 (byte 0xe9 at offset 6)"),
        (b"\xef\xbb\xbf-- x\n", "byte-order mark"),
        (b"-- x\n\x00\n", "NUL byte"),
    ],
)
def test_undecodable_files_get_the_same_words(tmp_path: Path, data: bytes, words: str) -> None:
    folder = write_folder(tmp_path / "m", {"002_bad.sql": data})
    with pytest.raises(CatalogError) as raised:
        catalog.load(folder)
    assert words in str(raised.value)
    assert [words in f.message for f in lint.lint_directory(folder)] == [True]


def test_duplicate_numbers_are_found_by_both(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path / "m",
        {
            "002_a.sql": migration_sql("002", "a", ""),
            "002_b.sql": migration_sql("002", "b", ""),
        },
    )
    assert list(catalog.duplicate_numbers(catalog.migration_paths(folder))) == [2]
    with pytest.raises(CatalogError, match="share version 002"):
        catalog.load(folder)
    naming = [f.path.name for f in lint.lint_directory(folder) if f.rule == "naming"]
    assert naming == ["002_a.sql", "002_b.sql"]


def _compose_condition(compose_file: str) -> str:
    """The shell test of the compose loop that picks no-transaction files, as sh runs it."""
    text = (ROOT / compose_file).read_text(encoding="utf-8")
    match = re.search(r"^\s*if (head -n 1 .*alumdb:no-transaction.*); then$", text, re.M)
    assert match is not None, f"{compose_file}: the loop's no-transaction test moved"
    return match[1].replace("$$", "$")  # compose's escape for a literal $


def test_both_compose_files_test_the_marker_alike() -> None:
    assert _compose_condition(COMPOSE_FILES[0]) == _compose_condition(COMPOSE_FILES[1])


@pytest.mark.parametrize(
    ("first_lines", "expected"),
    [
        ("-- alumdb:no-transaction\n", True),
        ("-- alumdb:no-transaction   \n", True),
        ("-- alumdb:no-transaction\r\n", True),
        ("  -- alumdb:no-transaction\n", True),
        ("-- alumdb:no-transaction\t\n", True),
        ("-- alumdb:no-transaction please\n", False),
        ("-- alumdb:no-transactions\n", False),
        ("-- alumdb:no-transaction; no, keep it\n", False),
        ("--alumdb:no-transaction\n", False),
        ("-- ALUMDB:NO-TRANSACTION\n", False),
        ("-- header\n-- alumdb:no-transaction\n", False),
        ("\n-- alumdb:no-transaction\n", False),
    ],
)
def test_engine_and_compose_loop_agree_on_the_marker(
    tmp_path: Path, first_lines: str, expected: bool
) -> None:
    path = tmp_path / "002_x.sql"
    path.write_bytes((first_lines + "SELECT 1;\n").encode())
    engine = catalog.is_no_transaction(path.read_bytes().decode())
    shell = subprocess.run(
        ["/bin/sh", "-c", _compose_condition(COMPOSE_FILES[0])],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "f": str(path)},
        check=False,
        timeout=10,
    )
    assert engine is expected
    assert (shell.returncode == 0) is expected
