"""no-data: data changes fail; DDL and function bodies pass."""

from __future__ import annotations

import pytest

from alumdb import lint
from tests.unit.lint.conftest import Writer, rules

NO_DATA_BAD = [
    "INSERT INTO tenants (slug, name) VALUES ('a', 'A');",
    "UPDATE tenants SET name = 'x';",
    "DELETE FROM tenants;",
    "COPY tenants FROM STDIN;",
    "MERGE INTO tenants t USING tenants s ON t.id = s.id WHEN MATCHED THEN DO NOTHING;",
    "WITH gone AS (DELETE FROM tenants RETURNING id) SELECT count(*) FROM gone;",
    "CREATE TABLE IF NOT EXISTS copy_of_tenants AS SELECT * FROM tenants;",
    "DO $$ BEGIN INSERT INTO tenants (slug, name) VALUES ('a', 'A'); END $$;",
]


@pytest.mark.parametrize("statement", NO_DATA_BAD)
def test_no_data_bad(write: Writer, statement: str) -> None:
    findings = lint.lint_file(write(statement + "\n"))
    assert rules(findings) == ["no-data"], findings
    assert findings[0].line == 6


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM tenants;",
        "CREATE OR REPLACE FUNCTION add_tenant(s text) RETURNS void LANGUAGE sql\n"
        "BEGIN ATOMIC INSERT INTO tenants (slug, name) VALUES (s, s); END;",
        "CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\n"
        "BEGIN DELETE FROM tenants; END $$;",
    ],
)
def test_no_data_good(write: Writer, statement: str) -> None:
    assert lint.lint_file(write(statement + "\n")) == []
