"""tracking-insert: missing, wrong, misplaced or doubled fails; the template's passes."""

from __future__ import annotations

import pytest

from alumdb import lint
from tests.helpers import header, tracking
from tests.unit.lint.conftest import Writer, of_rule


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


def test_tracking_good(write: Writer) -> None:
    text = header("1000_feature.sql") + "SELECT 1;\n" + tracking("1000_feature.sql")
    assert (
        of_rule(
            lint.lint_file(write(text, filename="1000_feature.sql", raw=True)), "tracking-insert"
        )
        == []
    )
    single_line = (
        header("012_feature.sql")
        + "INSERT INTO public.schema_migrations (version, name) VALUES ('012', 'feature') "
        "ON CONFLICT (version) DO NOTHING;\n"
    )
    assert lint.lint_file(write(single_line, raw=True)) == []
