"""explicit-names: unnamed or wrongly prefixed objects fail; named ones pass."""

from __future__ import annotations

import pytest

from alumdb import lint
from tests.unit.lint.conftest import TENANT_TABLE, Writer, of_rule, rules


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
