"""Template names and URLs of the pytest plugin's databases (no database needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from alumdb import catalog, testdb

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def test_template_name_follows_folder_and_content(tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(MIGRATIONS, copy)
    name = testdb.template_name(catalog.load(copy))
    assert name.startswith(testdb.TEMPLATE_PREFIX) and len(name) <= 63
    assert testdb.template_name(catalog.load(copy)) == name
    # Another folder with the same files: another template (folders never clean up each other).
    assert testdb.template_name(catalog.load(MIGRATIONS)) != name
    # CRLF is the same migration; a comment is not.
    first = sorted(copy.glob("0*.sql"))[0]
    first.write_bytes(first.read_bytes().replace(b"\n", b"\r\n"))
    assert testdb.template_name(catalog.load(copy)) == name
    first.write_text(first.read_text() + "-- edited\n")
    edited = testdb.template_name(catalog.load(copy))
    assert edited != name and edited.startswith(name[: len(testdb.TEMPLATE_PREFIX) + 9])


def test_url_for_quotes_credentials_and_keeps_options() -> None:
    params = {"host": "db.local", "port": 5433, "user": "ci user", "password": "p@ss/w:rd",
              "dbname": "postgres", "sslmode": "require"}  # fmt: skip
    url = testdb.url_for(params, "alumdb_test_1")
    parsed = psycopg.conninfo.conninfo_to_dict(url)
    assert parsed == {**params, "port": "5433", "dbname": "alumdb_test_1"}
