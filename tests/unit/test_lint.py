"""alumdb.lint: each rule has a file that breaks it and one that passes; the real
migrations lint clean, with our rules and with squawk."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from alumdb import lint
from alumdb.errors import LintError, UsageError
from alumdb.lint import Finding

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"
SQUAWK_CONFIG = ROOT / ".squawk.toml"
RULE_LINE = "-- " + "=" * 60

Writer = Callable[..., Path]


def header(filename: str, purpose: str = "Test migration") -> str:
    return f"{RULE_LINE}\n-- Migration: {filename}\n-- Purpose: {purpose}\n{RULE_LINE}\n\n"


def tracking(filename: str) -> str:
    version, name = filename.removesuffix(".sql").split("_", 1)
    return (
        "\n-- Record this migration\n"
        "INSERT INTO schema_migrations (version, name)\n"
        f"VALUES ('{version}', '{name}')\n"
        "ON CONFLICT (version) DO NOTHING;\n"
    )


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """Write a migration: the template's header and tracking insert around ``body``."""

    def make(
        body: str,
        filename: str = "012_feature.sql",
        *,
        raw: bool = False,
        directive: bool = False,
    ) -> Path:
        text = body if raw else header(filename) + body + tracking(filename)
        if directive:
            text = "-- alumdb:no-transaction\n" + text
        path = tmp_path / filename
        path.write_text(text, encoding="utf-8")
        return path

    return make


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def of_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


TENANT_TABLE = """
CREATE TABLE IF NOT EXISTS notes (
    id         UUID NOT NULL,
    tenant_id  UUID NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_notes PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_notes_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);
CREATE OR REPLACE TRIGGER trg_notes_updated_at
    BEFORE UPDATE ON notes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
"""


# --- the API -------------------------------------------------------------------------


def test_finding_str_and_order() -> None:
    a = Finding(Path("migrations/001_init.sql"), 3, 1, "header", "fix it")
    b = Finding(Path("migrations/001_init.sql"), 10, 2, "idempotent", "add IF NOT EXISTS")
    assert str(a) == "migrations/001_init.sql:3:1 header fix it"
    assert sorted([b, a]) == [a, b]


def test_rule_ids() -> None:
    assert set(lint.RULES) == {
        "naming",
        "header",
        "tracking-insert",
        "idempotent",
        "no-data",
        "non-destructive",
        "explicit-names",
        "tenant-scoped",
        "transaction-control",
        "syntax",
        "waiver",
    }
    assert all(description.strip() for description in lint.RULES.values())


def test_clean_file_has_no_findings(write: Writer) -> None:
    assert lint.lint_file(write(TENANT_TABLE)) == []


def test_missing_paths_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        lint.lint_file(tmp_path / "001_nope.sql")
    with pytest.raises(UsageError):
        lint.lint_directory(tmp_path / "nope")


def test_relative_paths_stay_relative(
    write: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("CREATE TABLE IF NOT EXISTS x (a int);")
    monkeypatch.chdir(tmp_path.parent)
    findings = lint.lint_directory(Path(tmp_path.name))
    assert findings
    assert all(str(f).startswith(f"{tmp_path.name}/012_feature.sql:") for f in findings)


# --- naming --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename", ["12_feature.sql", "012_Feature.sql", "012-feature.sql", "000_x.sql", "x.sql"]
)
def test_naming_bad(write: Writer, filename: str) -> None:
    path = write("SELECT 1;", filename=filename, raw=True)
    found = of_rule(lint.lint_file(path), "naming")
    assert len(found) == 1
    assert (found[0].line, found[0].column) == (1, 1)


def test_naming_duplicates_and_strays(write: Writer, tmp_path: Path) -> None:
    write(TENANT_TABLE, filename="012_first.sql")
    write(TENANT_TABLE.replace("notes", "memos"), filename="012_second.sql")
    write("SELECT 1;", filename="notes.sql", raw=True)
    (tmp_path / "_template.sql.tmpl").write_text("{filename}\n", encoding="utf-8")
    (tmp_path / ".hidden.sql").write_text("garbage", encoding="utf-8")
    (tmp_path / "README.md").write_text("# readme\n", encoding="utf-8")
    naming = of_rule(lint.lint_directory(tmp_path), "naming")
    assert sorted(f.path.name for f in naming) == [
        "012_first.sql",
        "012_second.sql",
        "notes.sql",
    ]
    assert "012_second.sql" in next(f for f in naming if f.path.name == "012_first.sql").message


def test_naming_good(write: Writer, tmp_path: Path) -> None:
    write(TENANT_TABLE, filename="012_first.sql")
    write(TENANT_TABLE.replace("notes", "memos"), filename="1000_second.sql")
    assert lint.lint_directory(tmp_path) == []


# --- header --------------------------------------------------------------------------


def test_header_missing(write: Writer) -> None:
    path = write("SELECT 1;" + tracking("012_feature.sql"), raw=True)
    found = of_rule(lint.lint_file(path), "header")
    assert len(found) == 1
    assert found[0].line == 1
    assert "-- Migration: 012_feature.sql" in found[0].message


def test_header_wrong_name_and_empty_purpose(write: Writer) -> None:
    text = header("011_other.sql", purpose="").replace("-- Purpose: ", "-- Purpose:  ")
    path = write(text + "SELECT 1;" + tracking("012_feature.sql"), raw=True)
    found = of_rule(lint.lint_file(path), "header")
    assert [f.line for f in found] == [2, 3]
    assert "012_feature.sql" in found[0].message


def test_header_wrong_rule_line(write: Writer) -> None:
    text = header("012_feature.sql").replace(RULE_LINE, "-- " + "=" * 59, 1)
    path = write(text + "SELECT 1;" + tracking("012_feature.sql"), raw=True)
    assert [(f.rule, f.line) for f in lint.lint_file(path)] == [("header", 1)]


def test_header_after_directive(write: Writer) -> None:
    path = write(TENANT_TABLE, directive=True)
    assert lint.lint_file(path) == []


# --- tracking-insert -----------------------------------------------------------------


def test_tracking_missing(write: Writer) -> None:
    path = write(header("012_feature.sql") + "SELECT 1;\n", raw=True)
    found = of_rule(lint.lint_file(path), "tracking-insert")
    assert len(found) == 1
    assert "VALUES ('012', 'feature')" in found[0].message


@pytest.mark.parametrize(
    ("insert", "words"),
    [
        ("VALUES ('011', 'feature') ON CONFLICT (version) DO NOTHING", "version '011'"),
        ("VALUES ('012', 'features') ON CONFLICT (version) DO NOTHING", "name 'features'"),
        ("VALUES ('012', 'feature')", "ON CONFLICT"),
        ("VALUES ('012', 'feature') ON CONFLICT (version) DO UPDATE SET name = 'x'", "NOTHING"),
        ("VALUES ('012', 'feature'), ('013', 'x') ON CONFLICT (version) DO NOTHING", "single"),
    ],
)
def test_tracking_wrong(write: Writer, insert: str, words: str) -> None:
    text = header("012_feature.sql") + f"INSERT INTO schema_migrations (version, name) {insert};\n"
    found = of_rule(lint.lint_file(write(text, raw=True)), "tracking-insert")
    assert len(found) == 1
    assert words in found[0].message
    assert found[0].line == 6


def test_tracking_not_last_and_duplicate(write: Writer) -> None:
    not_last = header("012_feature.sql") + tracking("012_feature.sql") + "SELECT 1;\n"
    found = of_rule(lint.lint_file(write(not_last, raw=True)), "tracking-insert")
    assert len(found) == 1
    assert "last statement" in found[0].message
    twice = header("012_feature.sql") + tracking("012_feature.sql") * 2
    found = of_rule(lint.lint_file(write(twice, raw=True)), "tracking-insert")
    assert len(found) == 1
    assert "second" in found[0].message


# --- idempotent ----------------------------------------------------------------------

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
    findings = lint.lint_file(write(TENANT_TABLE.replace(" IF NOT EXISTS", "")))
    assert rules(findings) == ["idempotent"]
    assert findings[0].message == "CREATE TABLE notes: add IF NOT EXISTS"


@pytest.mark.parametrize("statement", IDEMPOTENT_GOOD)
def test_idempotent_good(write: Writer, statement: str) -> None:
    assert lint.lint_file(write(statement + "\n")) == []


# --- no-data -------------------------------------------------------------------------

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


# --- non-destructive -----------------------------------------------------------------

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


# --- explicit-names ------------------------------------------------------------------


def table_with(line: str) -> str:
    return TENANT_TABLE.replace("    body       TEXT NOT NULL,", f"    {line},")


@pytest.mark.parametrize(
    ("element", "words"),
    [
        ("code TEXT PRIMARY KEY", "unnamed PRIMARY KEY"),
        ("code TEXT UNIQUE", "unnamed UNIQUE"),
        ("code UUID REFERENCES contacts (id)", "unnamed FOREIGN KEY"),
        ("code INT CHECK (code > 0)", "unnamed CHECK"),
        ("UNIQUE (tenant_id, id)", "unnamed UNIQUE"),
        ("CONSTRAINT notes_code_check CHECK (true)", "must start with ck_"),
        ("CONSTRAINT uq_notes_body CHECK (true)", "must start with ck_"),
        ("CONSTRAINT key_notes PRIMARY KEY (id)", "must start with pk_"),
        ("CONSTRAINT notes_fk FOREIGN KEY (id) REFERENCES x (id)", "must start with fk_"),
        ("CONSTRAINT ck_" + "x" * 61 + " CHECK (true)", "longer than 63"),
    ],
)
def test_explicit_names_table_bad(write: Writer, element: str, words: str) -> None:
    findings = lint.lint_file(write(table_with(element)))
    assert rules(findings) == ["explicit-names"], findings
    assert words in findings[0].message
    keyword = min(
        element.find(word)
        for word in ("CONSTRAINT", "PRIMARY", "UNIQUE", "REFERENCES", "CHECK")
        if word in element
    )
    if "longer" in words:
        keyword = element.find("ck_")  # the identifier itself
    assert (findings[0].line, findings[0].column) == (10, 5 + keyword)


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("CREATE INDEX IF NOT EXISTS notes_body ON notes (body);", "must start with idx_"),
        ("CREATE UNIQUE INDEX IF NOT EXISTS idx_notes_body ON notes (body);", "uq_"),
        ("CREATE INDEX ON notes (body);", "unnamed index"),
        (
            "CREATE OR REPLACE TRIGGER notes_x BEFORE UPDATE ON notes FOR EACH ROW "
            "EXECUTE FUNCTION f();",
            "must start with trg_",
        ),
        (
            "DO $$ BEGIN ALTER TABLE notes ADD CHECK (body <> ''); "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
            "unnamed CHECK",
        ),
        ("ALTER TABLE notes ADD COLUMN IF NOT EXISTS code TEXT UNIQUE;", "unnamed UNIQUE"),
    ],
)
def test_explicit_names_statements_bad(write: Writer, statement: str, words: str) -> None:
    findings = of_rule(lint.lint_file(write(statement + "\n")), "explicit-names")
    assert len(findings) == 1, findings
    assert words in findings[0].message


def test_explicit_names_good(write: Writer) -> None:
    body = table_with(
        "code TEXT NOT NULL DEFAULT 'x' CONSTRAINT uq_notes_code UNIQUE, "
        "n INT GENERATED ALWAYS AS IDENTITY, "
        "CONSTRAINT ck_notes_code CHECK (code <> ''), "
        "CONSTRAINT ex_notes_x EXCLUDE USING gist (n WITH =)"
    ) + (
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_notes_lower_code ON notes (lower(code));\n"
        "CREATE INDEX IF NOT EXISTS idx_notes_code ON notes (code);\n"
    )
    assert lint.lint_file(write(body)) == []


# --- tenant-scoped -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("    tenant_id  UUID NOT NULL,\n", "", "add column tenant_id"),
        ("    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n", "", "created_at"),
        ("    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n", "", "updated_at"),
        (
            ",\n    CONSTRAINT fk_notes_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)",
            "",
            "REFERENCES tenants",
        ),
        ("tenant_id  UUID NOT NULL", "tenant_id  UUID", "NOT NULL"),
        ("BEFORE UPDATE ON notes", "BEFORE UPDATE ON other", "CREATE OR REPLACE TRIGGER"),
        ("BEFORE UPDATE", "AFTER UPDATE", "CREATE OR REPLACE TRIGGER"),
        ("FUNCTION set_updated_at()", "FUNCTION touch()", "CREATE OR REPLACE TRIGGER"),
    ],
)
def test_tenant_scoped_bad(write: Writer, old: str, new: str, words: str) -> None:
    body = TENANT_TABLE.replace(old, new)
    assert body != TENANT_TABLE
    body = body.replace("PRIMARY KEY (tenant_id, id)", "PRIMARY KEY (id)")
    findings = lint.lint_file(write(body))
    assert rules(findings) == ["tenant-scoped"], findings
    assert words in findings[0].message
    assert findings[0].line == 7


def test_tenant_scoped_column_level_fk(write: Writer) -> None:
    body = TENANT_TABLE.replace(
        "tenant_id  UUID NOT NULL,",
        "tenant_id  UUID NOT NULL CONSTRAINT fk_notes_tenant REFERENCES tenants (id),",
    ).replace(
        ",\n    CONSTRAINT fk_notes_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)", ""
    )
    assert lint.lint_file(write(body)) == []


def test_tenants_table_needs_no_tenant_id(write: Writer) -> None:
    body = """
CREATE TABLE IF NOT EXISTS tenants (
    id         UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_tenants PRIMARY KEY (id)
);
CREATE OR REPLACE TRIGGER trg_tenants_updated_at
    BEFORE UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION set_updated_at();
"""
    assert lint.lint_file(write(body)) == []
    findings = lint.lint_file(write(body.replace("updated_at TIMESTAMPTZ", "changed TIMESTAMPTZ")))
    assert rules(findings) == ["tenant-scoped"]


def test_tenant_scoped_waiver(write: Writer) -> None:
    body = (
        "\n-- A lookup shared by every tenant.\n"
        "-- alumdb: allow tenant-scoped because country codes are global reference data\n"
        "CREATE TABLE IF NOT EXISTS countries (\n"
        "    code TEXT NOT NULL,\n"
        "    CONSTRAINT pk_countries PRIMARY KEY (code)\n"
        ");\n"
    )
    assert lint.lint_file(write(body)) == []


# --- transaction-control -------------------------------------------------------------


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


# --- syntax --------------------------------------------------------------------------


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


# --- waiver --------------------------------------------------------------------------

TWO_DROPS = "DROP TABLE IF EXISTS old_a;\n\nDROP TABLE IF EXISTS old_b;\n"


def test_waiver_with_reason_silences_one_statement(write: Writer) -> None:
    body = "-- alumdb: allow non-destructive because old_a was never used (ticket 42)\n" + TWO_DROPS
    findings = lint.lint_file(write(body))
    assert [(f.rule, f.line) for f in findings] == [("non-destructive", 9)]


def test_waiver_several_rules_and_comment_lines_between(write: Writer) -> None:
    body = (
        "-- alumdb: allow non-destructive, idempotent because it is a scratch table\n"
        "-- (created by hand in 2019)\n"
        "DROP TABLE old_a;\n"
    )
    assert lint.lint_file(write(body)) == []


def test_waiver_only_silences_the_rules_it_names(write: Writer) -> None:
    body = "-- alumdb: allow idempotent because the table cannot exist yet\nDROP TABLE old_a;\n"
    assert rules(lint.lint_file(write(body))) == ["non-destructive"]


@pytest.mark.parametrize(
    ("comment", "words"),
    [
        ("-- alumdb: allow non-destructive", "no reason"),
        ("-- alumdb: allow non-destructive because   ", "reason is empty"),
        ("-- alumdb: allow non-destructiv because typo", "unknown rule 'non-destructiv'"),
        ("-- alumdb: allow naming because I like it", "cannot be waived"),
        ("-- alumdb: allow because why not", "names no rule"),
        ("-- alumdb: permit non-destructive because x", "unrecognised alumdb comment"),
    ],
)
def test_waiver_invalid(write: Writer, comment: str, words: str) -> None:
    findings = lint.lint_file(write(comment + "\n" + TWO_DROPS))
    assert [(f.rule, f.line) for f in findings] == [
        ("waiver", 6),
        ("non-destructive", 7),
        ("non-destructive", 9),
    ]
    assert words in findings[0].message


def test_waiver_not_followed_by_statement(write: Writer) -> None:
    body = "-- alumdb: allow non-destructive because x\n\n" + TWO_DROPS
    findings = lint.lint_file(write(body))
    assert [(f.rule, f.line) for f in findings] == [
        ("waiver", 6),
        ("non-destructive", 8),
        ("non-destructive", 10),
    ]
    assert "not directly above a statement" in findings[0].message
    trailing = write(
        header("012_feature.sql") + tracking("012_feature.sql") + "-- alumdb: allow x because y\n",
        raw=True,
    )
    assert rules(lint.lint_file(trailing)) == ["waiver"]
    inside = write("CREATE TABLE IF NOT EXISTS t (\n  -- alumdb: allow x because y\n  a int\n);\n")
    assert "waiver" in rules(lint.lint_file(inside))


def test_naming_and_syntax_cannot_be_waived(write: Writer) -> None:
    body = "-- alumdb: allow syntax because it is fine\nSELEC 1;\n"
    findings = lint.lint_file(write(body, filename="12_bad.sql"))
    assert sorted(rules(findings)) == ["naming", "syntax"]


# --- the real migrations -------------------------------------------------------------


def test_real_migrations_lint_clean() -> None:
    findings = lint.lint_directory(MIGRATIONS)
    assert findings == [], "\n".join(map(str, findings))


# --- squawk --------------------------------------------------------------------------


def test_squawk_real_migrations_clean() -> None:
    paths = sorted(MIGRATIONS.glob("[0-9]*.sql"))
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
