"""naming: bad names and duplicate numbers fail; good names pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from alumdb import lint
from tests.unit.lint.conftest import TENANT_TABLE, Writer, of_rule


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
