"""new-migration: numbering, name validation, the template, and refusals that write nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alumdb import catalog, scaffold
from alumdb.errors import CatalogError, ScaffoldError
from tests.helpers import MIGRATIONS


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target)
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_next_number_and_template(folder: Path) -> None:
    before = catalog.load(folder)
    created = scaffold.new_migration(folder, "add_contact_notes")
    assert created.version == catalog.format_version(before.highest + 1)
    text = created.path.read_text()
    assert created.path.name == f"{created.version}_add_contact_notes.sql"
    assert f"-- Migration: {created.path.name}" in text
    assert f"VALUES ('{created.version}', 'add_contact_notes')" in text
    assert "ON CONFLICT (version) DO NOTHING;" in text
    assert catalog.load(folder).find(created.version) is not None


def test_past_999_keeps_numeric_order(tmp_path: Path) -> None:
    shutil.copy(MIGRATIONS / scaffold.TEMPLATE_NAME, tmp_path)
    (tmp_path / "999_last_three_digit.sql").write_text("SELECT 1;\n")
    created = scaffold.new_migration(tmp_path, "first_four_digit")
    assert created.path.name == "1000_first_four_digit.sql"
    nxt = scaffold.new_migration(tmp_path, "second_four_digit")
    assert nxt.path.name == "1001_second_four_digit.sql"
    assert [m.number for m in catalog.load(tmp_path)] == [999, 1000, 1001]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "NAME is empty"),
        ("AddNotes", "is not snake_case"),
        ("add notes", "is not snake_case"),
        ("../x", "is not snake_case"),
        ("a/b", "is not snake_case"),
        ("a;b", "is not snake_case"),
        ("$(rm -rf x)", "is not snake_case"),
        ("1_starts_with_digit", "is not snake_case"),
        ("trailing_", "is not snake_case"),
        ("x" * 64, "keep it to 63"),
        ("contacts", "is already used by 004_contacts.sql"),
    ],
)
def test_refusals_write_nothing(folder: Path, name: str, expected: str) -> None:
    before = snapshot(folder)
    with pytest.raises(ScaffoldError) as caught:
        scaffold.new_migration(folder, name)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert snapshot(folder) == before


def test_suggests_a_snake_case_name(folder: Path) -> None:
    with pytest.raises(ScaffoldError, match="such as 'add_contact_notes'"):
        scaffold.new_migration(folder, "Add Contact Notes")


def test_invalid_folder_is_refused_before_writing(folder: Path) -> None:
    (folder / "12_bad.sql").write_text("SELECT 1;")
    before = snapshot(folder)
    with pytest.raises(CatalogError):
        scaffold.new_migration(folder, "fine_name")
    assert snapshot(folder) == before
