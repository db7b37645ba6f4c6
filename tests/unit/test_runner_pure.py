"""The runner's pure parts, without a database: message building, preflight, accepting
an edit, and the lock-timeout retry decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from alumdb import database, scaffold
from alumdb.catalog import Catalog, Migration, checksum
from alumdb.errors import CatalogError, ScaffoldError, UsageError
from alumdb.runner import accept, message, plan, preflight
from alumdb.tracking import Tracking


def migration(version: int, body: str, *, transactional: bool = True) -> Migration:
    name = f"m{version}"
    return Migration(
        number=version,
        name=name,
        path=Path(f"{version:03d}_{name}.sql"),
        sql=body,
        checksum=checksum(body),
        transactional=transactional,
    )


FRAMING = message.Framing(Tracking('we"ird'), lock_timeout=0.5, helpers=True)


def test_message_addresses_the_tracking_table_by_quoted_qualified_name() -> None:
    built = message.build([migration(2, "SELECT 1;")], FRAMING, migration(2, ""), opened=False)
    assert '"we""ird"."schema_migrations"' in built.text
    assert "INSERT INTO schema_migrations" not in built.text


def test_every_file_is_followed_by_a_fresh_session_in_its_own_transaction() -> None:
    files = [migration(2, "SET search_path TO x;"), migration(3, "SELECT 1;")]
    built = message.build(files, FRAMING, files[-1], opened=False)
    first_commit = built.text.index("COMMIT;")
    after = built.text[first_commit:]
    # COMMIT; BEGIN; the fresh session; COMMIT; then the next file's BEGIN.
    assert after.startswith(f"COMMIT; BEGIN; {message.FRESH_SESSION}COMMIT; BEGIN; ")


def test_statement_of_counts_the_message_statements() -> None:
    """The failing statement is told from the statements that completed before it."""
    files = [migration(2, "SELECT 1; SELECT 2;"), migration(3, "-- c\nSELECT 3;\nSELECT 4;")]
    built = message.build(files, FRAMING, files[-1], opened=False)
    first = built.first_statements
    assert first[0] is not None and first[1] is not None
    # BEGIN, 2 helpers, the opening; the file's 2; the closing (as runner 2, record 1,
    # COMMIT, BEGIN, the fresh session, COMMIT); then BEGIN and the next opening.
    assert first[0] == 1 + 2 + message.OPENING_STATEMENTS
    closing = 2 + 1 + 1 + 1 + message.FRESH_SESSION_STATEMENTS + 1
    assert first[1] - first[0] == 2 + closing + 1 + message.OPENING_STATEMENTS
    assert built.statement_of(1, first[1] + 1) == 1
    assert built.statement_of(1, first[1] - 1) is None


def test_a_file_that_may_create_temporary_objects_ends_its_message() -> None:
    files = [migration(2, "CREATE TEMP TABLE x (i int);"), migration(3, "SELECT 1;")]
    assert message.batch(files, 0, frozenset()) == files[:1]
    built = message.build(files[:1], FRAMING, files[0], opened=False)
    assert message.DISCARD_TEMP in built.text


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("SELECT 1;\nCOMMIT;", "002_m2.sql:2:1: transaction control statement"),
        ("-- x\n\n  DISCARD ALL;", "002_m2.sql:3:3: DISCARD in a migration"),
        (
            "INSERT INTO schema_migrations (version, name) VALUES ('003', 'm2');",
            "002_m2.sql:1:1: the tracking insert records version '003'",
        ),
    ],
    ids=["commit", "discard", "stray-tracking-row"],
)
def test_preflight_names_file_line_and_column(body: str, found: str) -> None:
    with pytest.raises(CatalogError) as refused:
        preflight.check(Catalog(Path(), (migration(2, body),)), [migration(2, body)])
    assert str(refused.value).startswith(found)
    assert "rolled back" not in str(refused.value)


def test_preflight_refuses_versions_the_tracking_column_cannot_hold() -> None:
    long = migration(10**17, "SELECT 1;")
    with pytest.raises(CatalogError, match=r"schema_migrations\.version holds at most 16"):
        preflight.check(Catalog(Path(), (long,)), [])


def test_preflight_parses_no_transaction_files() -> None:
    bad = migration(2, "-- alumdb:no-transaction\nSELECT (;", transactional=False)
    with pytest.raises(CatalogError, match=r"002_m2.sql:2:9: syntax error"):
        preflight.check(Catalog(Path(), (bad,)), [bad])


def test_accept_compares_parsed_statements() -> None:
    old = "CREATE TABLE a (id int);\nINSERT INTO t VALUES (1);"
    assert (
        accept.first_difference(
            old, "-- note\ncreate table a (\n id int\n); insert into t values (1);"
        )
        is None
    )
    assert (
        accept.first_difference(old, "CREATE TABLE a (id bigint);\nINSERT INTO t VALUES (1);") == 0
    )
    assert accept.first_difference(old, old + "\nCREATE TABLE b ();") == 2


@pytest.mark.parametrize(
    ("options", "message_part"),
    [
        ({"lock_timeout": 0.0}, "--lock-timeout 0"),
        ({"lock_timeout": float("nan")}, "--lock-timeout nan"),
        ({"lock_budget": -3.0}, "--lock-budget -3"),
        ({"lock_budget": float("inf")}, "--lock-budget inf"),
        ({"wait_for_lock": float("nan")}, "--wait-for-lock nan"),
    ],
)
def test_options_that_cannot_mean_what_they_say(
    options: dict[str, float], message_part: str
) -> None:
    with pytest.raises(UsageError, match=message_part):
        plan.check_options(plan.Options(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:s3cr3t@[::1/db",
        "postgresql://u:s3%zzcr3t@h/db",
        "host=h password=s3cr3t port",
    ],
)
def test_a_url_that_does_not_parse_never_shows_its_password(url: str) -> None:
    with pytest.raises(UsageError) as refused:
        database.parse_url(url)
    assert "s3cr3t" not in str(refused.value) and "s3%zzcr3t" not in str(refused.value)


@pytest.mark.parametrize("purpose", ["two\nlines", "a\rb", "tab\there", "   "])
def test_purpose_must_be_one_printable_line(tmp_path: Path, purpose: str) -> None:
    with pytest.raises(ScaffoldError, match="--purpose"):
        scaffold.new_migration(tmp_path, "add_notes", purpose)
    assert list(tmp_path.iterdir()) == []


def test_statements_are_placed_by_the_parser_locations() -> None:
    """Every statement's slice starts after the previous one and its first token is on its
    own line (pglast 5's ``split`` put the second statement inside the first)."""
    from alumdb.runner import locate

    text = "-- header\n-- more\n\nSELECT 'é';\nCREATE TABLE dup (id int);\n/* c */ SELECT 3"
    pieces = locate.statements(text)
    starts = [locate.line_col(text, locate.statement_start(text, p)) for p in pieces]
    assert starts == [(4, 1), (5, 1), (6, 9)]
    assert [text[p].strip() for p in pieces][1:] == [
        "CREATE TABLE dup (id int)",
        "/* c */ SELECT 3",
    ]
    assert locate.statements("SELECT (") == []
