"""The migrations folder: names, numeric order, checksums, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from alumdb import catalog
from alumdb.errors import CatalogError

TRACK = (
    "INSERT INTO schema_migrations (version, name) VALUES ('{v}', '{n}')"
    " ON CONFLICT (version) DO NOTHING;\n"
)


def write(folder: Path, filename: str, body: str | bytes = "SELECT 1;\n") -> Path:
    path = folder / filename
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8", newline="")
    return path


def problems(folder: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        catalog.load(folder)
    return caught.value.problems


def test_orders_by_number_not_text(tmp_path: Path) -> None:
    write(tmp_path, "1000_later.sql")
    write(tmp_path, "999_earlier.sql")
    write(tmp_path, "002_second.sql")
    loaded = catalog.load(tmp_path)
    assert [m.filename for m in loaded] == ["002_second.sql", "999_earlier.sql", "1000_later.sql"]
    assert [m.version for m in loaded] == ["002", "999", "1000"]
    assert loaded.highest == 1000


def test_ignores_non_sql_and_hidden_files(tmp_path: Path) -> None:
    write(tmp_path, "001_init.sql")
    write(tmp_path, "README.md", "# notes")
    write(tmp_path, "_template.sql.tmpl", "-- {name}")
    write(tmp_path, ".003_scratch.sql")
    assert [m.filename for m in catalog.load(tmp_path)] == ["001_init.sql"]


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("1_init.sql", "not zero-padded to three digits; rename it 001_init.sql"),
        ("0001_init.sql", "not zero-padded to three digits; rename it 001_init.sql"),
        ("000_init.sql", "version 000 is not allowed"),
        ("001-init.sql", "not a migration file name"),
        ("001_Init.sql", "not a migration file name"),
        ("001_two__underscores.sql", "not a migration file name"),
        ("init.sql", "not a migration file name"),
        ("001_.sql", "not a migration file name"),
    ],
)
def test_bad_file_names(tmp_path: Path, filename: str, expected: str) -> None:
    write(tmp_path, filename)
    (problem,) = problems(tmp_path)
    assert problem.startswith(f"{filename}: ")
    assert expected in problem


def test_duplicate_numbers(tmp_path: Path) -> None:
    write(tmp_path, "004_contacts.sql")
    write(tmp_path, "004_people.sql")
    (problem,) = problems(tmp_path)
    assert problem.startswith("004_contacts.sql, 004_people.sql: 2 files share version 004")


def test_every_problem_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql")
    write(tmp_path, "002_b.sql", "")
    write(tmp_path, "003_c.sql", b"SELECT '\xff';")
    assert len(problems(tmp_path)) == 3


def test_empty_file(tmp_path: Path) -> None:
    write(tmp_path, "001_init.sql", "  \n\n")
    assert problems(tmp_path) == [
        "001_init.sql: the file is empty; write its DDL or delete the file"
    ]


def test_not_utf8_names_line(tmp_path: Path) -> None:
    write(tmp_path, "001_init.sql", b"SELECT 1;\n-- caf\xe9\n")
    (problem,) = problems(tmp_path)
    assert problem.startswith("001_init.sql:2: not valid UTF-8 (byte 0xe9")


def test_byte_order_mark_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "001_init.sql", b"\xef\xbb\xbfSELECT 1;\n")
    (problem,) = problems(tmp_path)
    assert problem.startswith("001_init.sql:1: starts with a UTF-8 byte-order mark")


def test_crlf_and_lf_have_one_checksum(tmp_path: Path) -> None:
    lf = write(tmp_path, "001_a.sql", "SELECT 1;\nSELECT 2;\n")
    crlf_dir = tmp_path / "crlf"
    crlf_dir.mkdir()
    write(crlf_dir, "001_a.sql", "SELECT 1;\r\nSELECT 2;\r\n")
    (a,) = catalog.load(tmp_path)
    (b,) = catalog.load(crlf_dir)
    assert a.checksum == b.checksum == catalog.checksum(lf.read_text())
    assert a.checksum != catalog.checksum("SELECT 1;\nSELECT 3;\n")


def test_missing_folder(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path / "nope")
    assert "the migrations folder does not exist" in problem


def test_no_transaction_directive(tmp_path: Path) -> None:
    write(
        tmp_path, "001_a.sql", "-- alumdb:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
    )
    write(tmp_path, "002_b.sql", "SELECT 1;\n-- alumdb:no-transaction\n")
    a, b = catalog.load(tmp_path)
    assert (a.transactional, b.transactional) == (False, True)


def test_find_accepts_any_padding(tmp_path: Path) -> None:
    write(tmp_path, "012_x.sql")
    loaded = catalog.load(tmp_path)
    assert loaded.find("12") is loaded.find("012") is loaded.find("0012") is not None
    assert loaded.find("13") is None
    assert loaded.find("x") is None


def test_real_migrations_load(migrations_dir: Path) -> None:
    loaded = catalog.load(migrations_dir)
    # 001..012, numbered without gaps; later files keep the sequence going.
    assert len(loaded) >= 12
    assert [m.version for m in loaded] == [f"{n:03d}" for n in range(1, len(loaded) + 1)]
    for m in loaded:
        assert TRACK.format(v=m.version, n=m.name).strip() in " ".join(m.sql.split())
