"""transaction-control: transaction statements and misplaced CONCURRENTLY fail; a
no-transaction file passes."""

from __future__ import annotations

import pytest

from alumdb import lint
from tests.unit.lint.conftest import Writer, rules


@pytest.mark.parametrize(
    "statement",
    [
        "BEGIN;",
        "COMMIT;",
        "ROLLBACK;",
        "SAVEPOINT s1;",
        "START TRANSACTION;",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_notes_body ON notes (body);",
        "DROP INDEX CONCURRENTLY IF EXISTS idx_notes_body;",
        "VACUUM notes;",
        "DO $$ BEGIN COMMIT; END $$;",
    ],
)
def test_transaction_control_bad(write: Writer, statement: str) -> None:
    findings = lint.lint_file(write(statement + "\n"))
    assert rules(findings) == ["transaction-control"], findings
    assert findings[0].line == 6


def test_transaction_control_directive(write: Writer) -> None:
    statement = "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_notes_body ON notes (body);\n"
    assert lint.lint_file(write(statement, directive=True)) == []
    misplaced = write("-- alumdb:no-transaction\n" + statement)
    findings = lint.lint_file(misplaced)
    assert rules(findings) == ["transaction-control", "transaction-control"]
    assert findings[0].line == 6
    assert "line 1" in findings[0].message
