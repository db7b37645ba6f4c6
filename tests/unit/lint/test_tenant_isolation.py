"""tenant-isolation: a table created with tenant_id is under row-level security, with its
tenant policy, in the same file; files before the first row-level security file are
grandfathered when a later file isolates their tables (the real 001-011 by 012)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alumdb import catalog, lint
from tests.helpers import MIGRATIONS, header, tracking
from tests.unit.lint.conftest import RLS, TENANT_TABLE, Writer, of_rule, rules

BARE_TABLE = TENANT_TABLE.replace(RLS.format(table="notes"), "")
ENABLE_ONLY = "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;\n"


def migration(name: str, body: str) -> str:
    return header(name) + body + tracking(name)


def test_isolated_table_passes(write: Writer) -> None:
    """The passing fixture: the table, its trigger, RLS and the policy (guarded)."""
    assert lint.lint_file(write(TENANT_TABLE)) == []


def test_table_without_row_level_security_fails(write: Writer) -> None:
    """The failing fixture: the same table without the DO block."""
    findings = lint.lint_file(write(BARE_TABLE))
    assert rules(findings) == ["tenant-isolation"], findings
    assert findings[0].line == 7  # the CREATE TABLE, after the header
    assert "table notes has tenant_id but is not under row-level security" in findings[0].message
    assert "do it in this file" in findings[0].message
    assert "ENABLE ROW LEVEL SECURITY" in findings[0].message
    assert "allow tenant-isolation because" in findings[0].message


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (ENABLE_ONLY, "enables row-level security but creates no tenant policy"),
        (
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polname = 'p') THEN\n"
            "CREATE POLICY p ON notes USING (tenant_id = current_tenant_id());\n"
            "END IF; END $$;\n",
            "creates a tenant policy but does not enable row-level security",
        ),
        (  # a policy that does not read tenant_id isolates nothing
            ENABLE_ONLY + "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_policy) THEN\n"
            "CREATE POLICY p ON notes USING (true);\nEND IF; END $$;\n",
            "creates no tenant policy",
        ),
        (  # a policy for SELECT only leaves writes unchecked
            ENABLE_ONLY + "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_policy) THEN\n"
            "CREATE POLICY p ON notes FOR SELECT USING (tenant_id = current_tenant_id());\n"
            "END IF; END $$;\n",
            "creates no tenant policy",
        ),
        (  # another table's policy does not count
            RLS.format(table="memos"),
            "is not under row-level security",
        ),
    ],
    ids=["enable-only", "policy-only", "policy-not-on-tenant_id", "select-only", "other-table"],
)
def test_half_measures_fail(write: Writer, extra: str, words: str) -> None:
    findings = lint.lint_file(write(BARE_TABLE + extra))
    assert rules(findings) == ["tenant-isolation"], findings
    assert words in findings[0].message


def test_top_level_statements_count_too(write: Writer) -> None:
    """Not guarded (idempotent says so), but isolated: this rule is satisfied."""
    policy = (
        "CREATE POLICY pol_notes_tenant ON notes FOR ALL TO alumoutreach_app\n"
        "    USING (notes.tenant_id = current_tenant_id());\n"
    )
    findings = lint.lint_file(write(BARE_TABLE + ENABLE_ONLY + policy))
    assert of_rule(findings, "tenant-isolation") == []
    assert rules(findings) == ["idempotent"]


def test_tables_without_tenant_id_are_not_concerned(write: Writer) -> None:
    body = (
        "-- alumdb: allow tenant-scoped because it is a global catalogue\n"
        "CREATE TABLE IF NOT EXISTS countries (code TEXT NOT NULL,"
        " created_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
        " updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
        " CONSTRAINT pk_countries PRIMARY KEY (code));\n"
        "CREATE OR REPLACE TRIGGER trg_countries_updated_at BEFORE UPDATE ON countries"
        " FOR EACH ROW EXECUTE FUNCTION set_updated_at();\n"
    )
    assert lint.lint_file(write(body)) == []


def test_a_waiver_with_a_reason_excuses_the_table(write: Writer) -> None:
    body = BARE_TABLE.replace(
        "CREATE TABLE",
        "-- alumdb: allow tenant-isolation because only the reporting job reads it, as owner\n"
        "CREATE TABLE",
    )
    assert lint.lint_file(write(body)) == []


# --- the folder: files before row-level security are grandfathered -----------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the real migrations (001-011 predate row-level security; 012 adds it)."""
    target = tmp_path / "migrations"
    target.mkdir()
    for path in catalog.migration_paths(MIGRATIONS):
        shutil.copy(path, target / path.name)
    return target


def next_name(folder: Path, name: str, offset: int = 1) -> str:
    return f"{catalog.format_version(catalog.load(folder).highest + offset)}_{name}.sql"


def test_the_real_folder_passes_because_012_isolates_the_older_tables(folder: Path) -> None:
    assert of_rule(lint.lint_directory(folder), "tenant-isolation") == []


def test_without_012_every_older_tenant_table_is_reported(folder: Path) -> None:
    (folder / "012_row_level_security.sql").unlink()
    findings = of_rule(lint.lint_directory(folder), "tenant-isolation")
    with_tenant_id = 28  # every table of 003-011 but permissions
    assert len(findings) == with_tenant_id
    assert {f.path.name[:3] for f in findings} == {f"{n:03d}" for n in range(3, 12)}


def test_an_older_table_the_baseline_forgot_is_reported_on_its_create_table(
    folder: Path,
) -> None:
    path = folder / "012_row_level_security.sql"
    text = path.read_text(encoding="utf-8")
    start = text.index(
        "DO $$\nBEGIN\n    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'contact_tags'"
    )
    end = text.index("END $$;\n", start) + len("END $$;\n")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    findings = of_rule(lint.lint_directory(folder), "tenant-isolation")
    assert [(f.path.name, f.line) for f in findings] == [("004_contacts.sql", 79)]
    assert "no later file of the folder brings it under row-level security" in findings[0].message


def test_a_new_table_after_012_must_be_isolated_in_its_own_file(folder: Path) -> None:
    """A later file does not excuse a table created after the baseline."""
    first = next_name(folder, "contact_notes")
    (folder / first).write_text(migration(first, BARE_TABLE), encoding="utf-8")
    second = next_name(folder, "isolate_notes", offset=2)
    (folder / second).write_text(migration(second, RLS.format(table="notes")), encoding="utf-8")
    findings = of_rule(lint.lint_directory(folder), "tenant-isolation")
    assert [f.path.name for f in findings] == [first]
    assert "do it in this file" in findings[0].message


def test_a_new_table_isolated_in_its_own_file_passes(folder: Path) -> None:
    name = next_name(folder, "contact_notes")
    (folder / name).write_text(migration(name, TENANT_TABLE), encoding="utf-8")
    assert lint.lint_directory(folder) == []
