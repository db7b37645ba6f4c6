"""header: a missing or wrong header block fails; the template's passes."""

from __future__ import annotations

from alumdb import lint
from tests.helpers import HEADER_RULE, header, tracking
from tests.unit.lint.conftest import TENANT_TABLE, Writer, of_rule


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
    text = header("012_feature.sql").replace(HEADER_RULE, "-- " + "=" * 59, 1)
    path = write(text + "SELECT 1;" + tracking("012_feature.sql"), raw=True)
    assert [(f.rule, f.line) for f in lint.lint_file(path)] == [("header", 1)]


def test_header_after_directive(write: Writer) -> None:
    path = write(TENANT_TABLE, directive=True)
    assert lint.lint_file(path) == []
