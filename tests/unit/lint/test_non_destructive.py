"""non-destructive: drops of data and renames fail; harmless drops pass."""

from __future__ import annotations

import pytest

from alumdb import lint
from tests.unit.lint.conftest import Writer, rules

NON_DESTRUCTIVE_BAD = [
    "DROP TABLE IF EXISTS notes;",
    "ALTER TABLE notes DROP COLUMN IF EXISTS body;",
    "TRUNCATE notes;",
    "DROP TYPE IF EXISTS mood;",
    "ALTER TABLE notes ALTER COLUMN body TYPE varchar(10);",
    "DROP SCHEMA IF EXISTS reporting;",
    "ALTER TABLE notes RENAME TO memos;",
    "ALTER TABLE notes RENAME COLUMN body TO text;",
    "DROP FUNCTION IF EXISTS f() CASCADE;",
]


@pytest.mark.parametrize("statement", NON_DESTRUCTIVE_BAD)
def test_non_destructive_bad(write: Writer, statement: str) -> None:
    findings = lint.lint_file(write(statement + "\n"))
    assert rules(findings) == ["non-destructive"], findings
    assert findings[0].line == 6


@pytest.mark.parametrize(
    "statement",
    [
        "DROP INDEX IF EXISTS idx_notes_body;",
        "DROP INDEX CONCURRENTLY IF EXISTS idx_notes_body;",
        "DROP VIEW IF EXISTS v_notes;",
        "DROP TRIGGER IF EXISTS trg_notes_x ON notes;",
        "ALTER TABLE notes DROP CONSTRAINT IF EXISTS ck_notes_body;",
        "ALTER INDEX idx_notes_a RENAME TO idx_notes_b;",
    ],
)
def test_non_destructive_good(write: Writer, statement: str) -> None:
    directive = "CONCURRENTLY" in statement
    assert lint.lint_file(write(statement + "\n", directive=directive)) == []
