"""The linter's API: findings, the registry, files and folders, the real migrations, the
spec's Common Operations and the PostgreSQL 15 grammar."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from alumdb import catalog, lint
from alumdb.errors import UsageError
from alumdb.lint import Finding, Severity
from alumdb.lint.rules import MODULES
from tests.helpers import MIGRATIONS, SQUAWK_CONFIG, header, tracking
from tests.unit.lint.conftest import TENANT_TABLE, Writer, rules

HERE = Path(__file__).resolve().parent


def test_finding_str_and_order() -> None:
    a = Finding(Path("migrations/001_init.sql"), 3, 1, "header", "fix it")
    b = Finding(Path("migrations/001_init.sql"), 10, 2, "idempotent", "add IF NOT EXISTS")
    assert str(a) == "migrations/001_init.sql:3:1 header fix it"
    assert sorted([b, a]) == [a, b]


def test_registry() -> None:
    """Every rule module is registered once, declares its fields, and has its tests here."""
    assert [rule.id for rule in lint.ALL] == list(lint.RULES)
    assert len(set(lint.RULES)) == len(MODULES)
    for module_name, rule in zip(MODULES, lint.ALL, strict=True):
        module = importlib.import_module(f"alumdb.lint.rules.{module_name}")
        assert module.RULE is rule
        assert rule.id == module_name.replace("_", "-")
        assert rule.severity in set(Severity)
        assert (HERE / f"test_{module_name}.py").is_file(), f"no tests for {rule.id}"
    assert {"naming", "syntax", "waiver"} == lint.UNWAIVABLE


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
        "tenant-isolation",
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


def test_real_migrations_lint_clean() -> None:
    findings = lint.lint_directory(MIGRATIONS)
    assert findings == [], "\n".join(map(str, findings))


# The spec's "Common Operations" (migrations-README.md), verbatim, in one migration.
COMMON_OPERATIONS = """ALTER TABLE contacts 
ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);

CREATE INDEX IF NOT EXISTS idx_contacts_new_field 
ON contacts(tenant_id, new_field);

ALTER TYPE contact_status ADD VALUE IF NOT EXISTS 'new_status';
"""  # noqa: W291 - the spec's trailing spaces, verbatim


def test_common_operations_give_no_error(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in catalog.migration_paths(MIGRATIONS):
        (folder / path.name).write_bytes(path.read_bytes())
    name = f"{catalog.format_version(catalog.load(MIGRATIONS).highest + 1)}_common_operations.sql"
    (folder / name).write_text(header(name) + COMMON_OPERATIONS + tracking(name), encoding="utf-8")
    ours = lint.lint_directory(folder)
    theirs = lint.run_squawk(catalog.migration_paths(folder), SQUAWK_CONFIG)
    assert ours == [], "\n".join(map(str, ours))
    assert lint.failing(theirs, strict=False) == [], "\n".join(map(str, theirs))
    index = next(f for f in theirs if f.rule == "squawk/require-concurrent-index-creation")
    assert index.severity is Severity.WARNING
    assert "CONCURRENTLY IF NOT EXISTS" in index.message
    assert lint.failing(theirs, strict=True) == theirs


@pytest.mark.parametrize(
    ("statement", "since"),
    [
        (
            "ALTER TABLE contacts ADD CONSTRAINT ck_contacts_attrs CHECK (attrs IS JSON OBJECT);",
            "16",
        ),
        ("SELECT JSON_OBJECT('a': 1);", "16"),
        ("ALTER TABLE contacts ALTER COLUMN full_name SET EXPRESSION AS (lower(name));", "17"),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE;",
            "17",
        ),
    ],
)
def test_newer_postgresql_syntax_is_a_syntax_finding(
    write: Writer, statement: str, since: str
) -> None:
    """PostgreSQL 15 is the target: what only a newer server parses is an error."""
    findings = lint.lint_file(write(statement + "\n"))
    assert "syntax" in rules(findings), (since, findings)
    assert "PostgreSQL 15" in next(f for f in findings if f.rule == "syntax").message
