"""DATABASE_URL parsing and redaction: bad URLs are one clear line, passwords never shown."""

from __future__ import annotations

import pytest

from alumdb import database
from alumdb.errors import UsageError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("mysql://u:p@h/db", "scheme 'mysql' is not PostgreSQL"),
        ("not a url", "does not parse"),
        ("host=h port", "does not parse"),
        ("postgresql://u@h:notaport/db", "does not parse"),
    ],
)
def test_bad_urls(url: str, expected: str) -> None:
    with pytest.raises(UsageError) as caught:
        database.parse_url(url)
    message = str(caught.value)
    assert expected in message
    assert message.startswith("--database-url")
    assert "\n" not in message


def test_good_urls() -> None:
    params = database.parse_url("postgresql://alice:s3cret@db.example:6543/crm?sslmode=require")
    assert params == {
        "user": "alice",
        "password": "s3cret",
        "host": "db.example",
        "port": "6543",
        "dbname": "crm",
        "sslmode": "require",
    }
    assert database.parse_url("host=h dbname=d")["dbname"] == "d"


def test_redact_never_shows_the_password() -> None:
    params = database.parse_url("postgresql://alice:s3cret@db:5432/crm")
    shown = database.redact(params)
    assert shown == "postgresql://alice:***@db:5432/crm"
    assert "s3cret" not in shown
    assert database.redact({"host": "h"}) == "postgresql://h/"
