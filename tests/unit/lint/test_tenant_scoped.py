"""tenant-scoped: tables without tenancy fail; tenant tables pass."""

from __future__ import annotations

import pytest

from alumdb import lint
from tests.unit.lint.conftest import TENANT_TABLE, Writer, rules


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
