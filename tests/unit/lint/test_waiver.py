"""waiver: invalid waivers fail and silence nothing; valid ones silence their rules."""

from __future__ import annotations

import pytest

from alumdb import lint
from tests.helpers import header, tracking
from tests.unit.lint.conftest import Writer, rules

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
