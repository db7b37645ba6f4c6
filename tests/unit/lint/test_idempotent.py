"""idempotent: statements that fail a second run fail; guarded ones pass."""

from __future__ import annotations

import pytest

from alumdb import lint
from tests.unit.lint.conftest import TENANT_TABLE, Writer, rules

IDEMPOTENT_BAD = [
    "CREATE INDEX idx_notes_body ON notes (tenant_id, body);",
    "CREATE SEQUENCE seq_x;",
    "CREATE SCHEMA reporting;",
    "CREATE EXTENSION citext;",
    "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);",
    "ALTER TABLE notes ADD COLUMN title TEXT;",
    "ALTER TYPE contact_status ADD VALUE 'deleted' AFTER 'archived';",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
    "CREATE PROCEDURE p() LANGUAGE sql AS $$ SELECT 1 $$;",
    "CREATE TRIGGER trg_notes_x BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION f();",
    "CREATE VIEW v_notes AS SELECT 1 AS one;",
    "CREATE TYPE mood AS ENUM ('sad', 'happy');",
    "CREATE TYPE pair AS (a int, b int);",
    "CREATE DOMAIN email AS text;",
    "ALTER TABLE notes ADD CONSTRAINT ck_notes_body CHECK (body <> '');",
    "CREATE POLICY p_notes ON notes USING (true);",
    "DROP INDEX idx_notes_body;",
    "DO $$ BEGIN CREATE TYPE mood AS ENUM ('sad'); END $$;",
    "DO $$\nBEGIN\n    IF true THEN\n        CREATE TYPE mood AS ENUM ('sad');\n"
    "    END IF;\nEND $$;",
]

IDEMPOTENT_GOOD = [
    "CREATE INDEX IF NOT EXISTS idx_notes_body ON notes (tenant_id, body);",
    "CREATE SEQUENCE IF NOT EXISTS seq_x;",
    "CREATE SCHEMA IF NOT EXISTS reporting;",
    "CREATE EXTENSION IF NOT EXISTS citext;",
    "CREATE COLLATION IF NOT EXISTS ci (provider = icu, locale = 'und-u-ks-level2');",
    "ALTER TABLE notes ADD COLUMN IF NOT EXISTS title TEXT;",
    "ALTER TYPE contact_status ADD VALUE IF NOT EXISTS 'deleted' AFTER 'archived';",
    "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
    "CREATE OR REPLACE TRIGGER trg_notes_x BEFORE UPDATE ON notes FOR EACH ROW "
    "EXECUTE FUNCTION f();",
    "CREATE OR REPLACE VIEW v_notes AS SELECT 1 AS one;",
    "DROP INDEX IF EXISTS idx_notes_body;",
    """DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'mood' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE mood AS ENUM ('sad', 'happy');
    END IF;
END $$;""",
    """DO $$ BEGIN
    CREATE TYPE mood AS ENUM ('sad', 'happy');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;""",
    """DO $body$
BEGIN
    IF to_regclass('notes') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_constraint WHERE conname = 'ck_notes_body'
    ) THEN
        ALTER TABLE notes ADD CONSTRAINT ck_notes_body CHECK (body <> '');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE policyname = 'p_notes') THEN
        CREATE POLICY p_notes ON notes USING (true);
    END IF;
END $body$;""",
]


@pytest.mark.parametrize("statement", IDEMPOTENT_BAD)
def test_idempotent_bad(write: Writer, statement: str) -> None:
    findings = lint.lint_file(write(statement + "\n"))
    assert rules(findings) == ["idempotent"], findings
    statement_line = 6 + statement[: statement.find("CREATE TYPE")].count("\n")
    if "IF true" in statement:
        assert findings[0].line == statement_line
        assert findings[0].column == 9
    else:
        assert findings[0].line == 6


def test_idempotent_create_table(write: Writer) -> None:
    table = TENANT_TABLE.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE")
    findings = lint.lint_file(write(table))
    assert rules(findings) == ["idempotent"]
    assert findings[0].message == "CREATE TABLE notes: add IF NOT EXISTS"


@pytest.mark.parametrize("statement", IDEMPOTENT_GOOD)
def test_idempotent_good(write: Writer, statement: str) -> None:
    assert lint.lint_file(write(statement + "\n")) == []
