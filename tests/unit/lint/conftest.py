"""Fixtures of the linter's tests: a writer of migration files and a tenant table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from alumdb.lint import Finding
from tests.helpers import header, tracking

Writer = Callable[..., Path]

# Row-level security and the tenant policy for {table}, as migrations/README.md shows.
RLS = """
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = '{table}'::regclass) THEN
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = '{table}'::regclass AND polname = 'pol_{table}_tenant'
    ) THEN
        CREATE POLICY pol_{table}_tenant ON {table}
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;
"""

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
""" + RLS.format(table="notes")


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
        text = body if raw else header(filename, "Test migration") + body + tracking(filename)
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
