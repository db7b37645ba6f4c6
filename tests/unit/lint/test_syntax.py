"""syntax: what PostgreSQL 15 rejects fails; valid SQL passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from alumdb import lint
from tests.unit.lint.conftest import Writer, rules


def test_syntax_error_position(write: Writer) -> None:
    findings = lint.lint_file(write("CREATE TABLE IF NOT EXISTS x (\n    a int,,\n);\n"))
    assert rules(findings) == ["syntax"]
    assert (findings[0].line, findings[0].column) == (7, 11)


def test_psql_meta_command(write: Writer) -> None:
    findings = lint.lint_file(write("SELECT 1;\n\\set ON_ERROR_STOP on\n"))
    assert rules(findings) == ["syntax"]
    assert findings[0].line == 7
    assert "psql meta-command" in findings[0].message


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"\xef\xbb\xbfSELECT 1;", "byte-order mark"), (b"SELECT '\xff';", "UTF-8")],
)
def test_undecodable(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "012_feature.sql"
    path.write_bytes(data)
    findings = lint.lint_file(path)
    assert rules(findings) == ["syntax"]
    assert words in findings[0].message


def test_syntax_good(write: Writer) -> None:
    assert lint.lint_file(write("SELECT 'é', $x$ ; $x$;\n")) == []
