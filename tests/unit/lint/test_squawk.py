"""The squawk adapter: findings parsed, severities, no-transaction files, failures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from alumdb import catalog, lint
from alumdb.errors import LintError
from alumdb.lint import Severity
from tests.helpers import MIGRATIONS, SQUAWK_CONFIG
from tests.unit.lint.conftest import Writer


def test_squawk_real_migrations_clean() -> None:
    paths = catalog.migration_paths(MIGRATIONS)
    assert paths
    findings = lint.run_squawk(paths, SQUAWK_CONFIG)
    assert findings == [], "\n".join(map(str, findings))


def test_squawk_findings_are_parsed(write: Writer) -> None:
    path = write("ALTER TABLE notes ADD COLUMN IF NOT EXISTS at TIMESTAMP;\n")
    findings = lint.run_squawk([path], SQUAWK_CONFIG)
    assert [(f.rule, f.line, f.column) for f in findings] == [("squawk/prefer-timestamp-tz", 6, 47)]
    assert findings[0].path == path
    assert "timestamptz" in findings[0].message


def test_squawk_no_transaction_files(write: Writer, tmp_path: Path) -> None:
    statement = "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_notes_body ON notes (body);\n"
    outside = write(statement, directive=True)
    inside = write(statement, filename="013_inside.sql")
    findings = lint.run_squawk([outside, inside], SQUAWK_CONFIG)
    assert [(f.path.name, f.rule) for f in findings] == [
        ("013_inside.sql", "squawk/ban-concurrent-index-creation-in-transaction")
    ]


def test_squawk_missing(write: Writer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LintError, match="squawk is not installed") as raised:
        lint.run_squawk([write("SELECT 1;\n")], SQUAWK_CONFIG)
    assert raised.value.exit_code == 8
    assert lint.run_squawk([], SQUAWK_CONFIG) == []


def test_squawk_bad_config(write: Writer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("excluded_rules = 3\n", encoding="utf-8")
    with pytest.raises(LintError, match="squawk failed"):
        lint.run_squawk([write("SELECT 1;\n")], bad)
    with pytest.raises(LintError, match="not found"):
        lint.run_squawk([write("SELECT 1;\n")], tmp_path / "missing.toml")


def test_squawk_binary_found() -> None:
    binary = lint.squawk_binary()
    assert binary is not None
    assert os.access(binary, os.X_OK)


def test_lock_rules_are_warnings_with_the_safer_way(write: Writer) -> None:
    path = write("CREATE INDEX IF NOT EXISTS idx_contacts_x ON contacts (tenant_id, x);\n")
    findings = lint.run_squawk([path], SQUAWK_CONFIG)
    assert [(f.rule, f.severity) for f in findings] == [
        ("squawk/require-concurrent-index-creation", Severity.WARNING)
    ]
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS" in findings[0].message
    assert "-- alumdb:no-transaction" in findings[0].message
    assert " warning: " in str(findings[0])


def test_other_squawk_rules_are_errors(write: Writer) -> None:
    path = write("ALTER TABLE contacts ADD COLUMN IF NOT EXISTS at TIMESTAMP;\n")
    assert [f.severity for f in lint.run_squawk([path], SQUAWK_CONFIG)] == [Severity.ERROR]
