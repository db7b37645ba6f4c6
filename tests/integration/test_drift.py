"""invoke drift against real PostgreSQL: identical, hand changes, partial history, refusals,
and no shadow database left behind (also after SIGINT/SIGTERM mid-replay)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from alumdb import catalog, runner, shadow
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS, ROOT, migration_sql

pytestmark = pytest.mark.docker

Invoke = Callable[..., subprocess.CompletedProcess[str]]
DRIFT_EXIT = 10
NEXT = catalog.load(MIGRATIONS).highest + 1  # numbers for fixture migrations after the real ones


def shadow_databases(pg_server: PgServer) -> list[str]:
    with pg_server.admin() as conn:
        return shadow.leftovers(conn)


def difference_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line[:2] in {"+ ", "- ", "~ "}]


@pytest.fixture(scope="module")
def template_db(pg_server: PgServer) -> Iterator[str]:
    """One database migrated with migrations/, read by some tests and cloned by others."""
    name = pg_server.create_database()
    try:
        with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
            runner.migrate(conn, catalog.load(MIGRATIONS))
        yield name
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def clone(pg_server: PgServer, template_db: str) -> Iterator[str]:
    """The URL of a copy of the migrated template, for a test that changes it."""
    name = f"{template_db}_c{os.getpid()}{time.monotonic_ns() % 100000}"
    with pg_server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


def test_freshly_migrated_database_has_no_drift(
    run_invoke: Invoke, pg_server: PgServer, template_db: str
) -> None:
    url = pg_server.url(template_db)
    result = run_invoke("drift", "--database-url", url)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(catalog.load(MIGRATIONS))
    assert f"replaying {count} recorded migrations (001..{NEXT - 1:03d})" in result.stdout
    assert "no drift: the schema is what the" in result.stdout
    assert difference_lines(result.stdout) == []
    assert pg_server.password not in result.stdout + result.stderr
    as_json = run_invoke("drift", "--database-url", url, "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["identical"] is True and document["differences"] == []
    assert len(document["replayed"]) == count
    assert shadow_databases(pg_server) == []


HAND_CHANGES = {
    "extra-index": (
        "CREATE INDEX ix_hand_made ON contacts (created_at)",
        "+ index public.ix_hand_made: expected nothing; found CREATE INDEX ix_hand_made ON "
        "public.contacts USING btree (created_at)",
    ),
    "dropped-index": (
        "DROP INDEX idx_contacts_status",
        "- index public.idx_contacts_status: expected CREATE INDEX idx_contacts_status ON "
        "public.contacts USING btree (tenant_id, status); found nothing",
    ),
    "column-type": (
        "ALTER TABLE contacts ALTER COLUMN degree TYPE varchar(100)",
        "~ column public.contacts.degree: expected text; found character varying(100)",
    ),
    "column-added": (
        "ALTER TABLE contacts ADD COLUMN nickname text NOT NULL DEFAULT ''",
        "+ column public.contacts.nickname: expected nothing; found text NOT NULL DEFAULT ''::text",
    ),
    "default-changed": (
        "ALTER TABLE contacts ALTER COLUMN source SET DEFAULT 'import'",
        "~ column public.contacts.source: expected text; found text DEFAULT 'import'::text",
    ),
    "nullability": (
        "ALTER TABLE contacts ALTER COLUMN external_id SET NOT NULL",
        "~ column public.contacts.external_id: expected text; found text NOT NULL",
    ),
    "check-removed": (
        "ALTER TABLE contacts DROP CONSTRAINT ck_contacts_graduation_year",
        "- constraint public.contacts.ck_contacts_graduation_year: expected CHECK "
        "(((graduation_year >= 1900) AND (graduation_year <= 2100))); found nothing",
    ),
    "enum-value": (
        "ALTER TYPE contact_status ADD VALUE 'vip'",
        "~ enum public.contact_status: expected ENUM ('active', 'inactive', 'bounced', "
        "'unsubscribed', 'archived'); found ENUM ('active', 'inactive', 'bounced', "
        "'unsubscribed', 'archived', 'vip')",
    ),
    "trigger-disabled": (
        "ALTER TABLE contact_tags DISABLE TRIGGER trg_contact_tags_updated_at",
        "~ trigger public.contact_tags.trg_contact_tags_updated_at: expected CREATE TRIGGER "
        "trg_contact_tags_updated_at BEFORE UPDATE ON public.contact_tags FOR EACH ROW EXECUTE "
        "FUNCTION public.set_updated_at() [enabled]; found CREATE TRIGGER "
        "trg_contact_tags_updated_at BEFORE UPDATE ON public.contact_tags FOR EACH ROW EXECUTE "
        "FUNCTION public.set_updated_at() [disabled]",
    ),
    "trigger-dropped": (
        "DROP TRIGGER trg_contacts_updated_at ON contacts",
        "- trigger public.contacts.trg_contacts_updated_at: expected CREATE TRIGGER "
        "trg_contacts_updated_at BEFORE UPDATE ON public.contacts FOR EACH ROW EXECUTE "
        "FUNCTION public.set_updated_at() [enabled]; found nothing",
    ),
    "function-body": (
        "CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END; $$",
        "~ function public.set_updated_at(): expected CREATE OR REPLACE FUNCTION "
        "public.set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $function$ BEGIN "
        "NEW.updated_at := greatest(now(), OLD.updated_at + interval '1 millisecond'); "
        "RETURN NEW; END; $function$; found CREATE OR REPLACE FUNCTION "
        "public.set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $function$ BEGIN "
        "NEW.updated_at := now(); RETURN NEW; END; $function$",
    ),
    "grant": (
        "GRANT SELECT ON contacts TO PUBLIC",
        # 012 grants the application's role; the extra grant changes the table's list.
        "~ privileges table public.contacts: expected alumoutreach_app: DELETE, INSERT, "
        "SELECT, UPDATE; found PUBLIC: SELECT; alumoutreach_app: DELETE, INSERT, SELECT, UPDATE",
    ),
    # A whole extra table is one line: its columns and constraints are not repeated.
    "extra-table": (
        "CREATE TABLE hand_notes (id int CONSTRAINT pk_hand_notes PRIMARY KEY, body text)",
        "+ table public.hand_notes: expected nothing; found table",
    ),
}


def test_every_hand_change_is_drift(run_invoke: Invoke, pg_server: PgServer, clone: str) -> None:
    """All the changes above on one database (one drift run): each is named, with both
    definitions, on a line of its own, and nothing else is reported."""
    with psycopg.connect(clone, autocommit=True) as conn:
        for statement, _ in HAND_CHANGES.values():
            conn.execute(statement)
    result = run_invoke("drift", "--database-url", clone)
    assert result.returncode == DRIFT_EXIT, result.stdout + result.stderr
    lines = difference_lines(result.stdout)
    assert sorted(lines) == sorted(line for _, line in HAND_CHANGES.values()), result.stdout
    assert f"error: drift: {len(HAND_CHANGES)} difference(s)" in result.stderr
    assert "Traceback" not in result.stderr
    assert pg_server.password not in result.stdout + result.stderr
    assert shadow_databases(pg_server) == []


def test_json_lists_the_differences(run_invoke: Invoke, clone: str) -> None:
    with psycopg.connect(clone, autocommit=True) as conn:
        conn.execute("DROP INDEX idx_contacts_status")
        conn.execute("CREATE INDEX ix_hand_made ON contacts (created_at)")
    result = run_invoke("drift", "--database-url", clone, "--json")
    assert result.returncode == DRIFT_EXIT, result.stderr
    document = json.loads(result.stdout)
    assert document["identical"] is False
    assert [(d["sign"], d["change"], d["kind"], d["name"]) for d in document["differences"]] == [
        ("-", "missing", "index", "public.idx_contacts_status"),
        ("+", "extra", "index", "public.ix_hand_made"),
    ]
    assert document["differences"][0]["actual"] is None
    assert "USING btree (tenant_id, status)" in document["differences"][0]["expected"]


def test_column_order_is_a_note_not_drift(run_invoke: Invoke, clone: str) -> None:
    """A column dropped and added back (same definition) comes last: a note, exit 0."""
    with psycopg.connect(clone, autocommit=True) as conn:
        conn.execute("ALTER TABLE contacts DROP COLUMN degree")
        conn.execute("ALTER TABLE contacts ADD COLUMN degree text")
    result = run_invoke("drift", "--database-url", clone)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: the columns of public.contacts are in another order (not drift)" in result.stdout
    assert difference_lines(result.stdout) == []


def test_database_at_005_compares_with_001_to_005(
    run_invoke: Invoke, pg_server: PgServer, fresh_db: str
) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, catalog.load(MIGRATIONS), runner.Options(target="005"))
    # A shadow left by a run killed with SIGKILL is named, with how to drop it.
    leftover = f"{shadow.PREFIX}killed{os.getpid()}"
    with pg_server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{leftover}"')
    try:
        result = run_invoke("drift", "--database-url", fresh_db)
    finally:
        pg_server.drop_database(leftover)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replaying 5 recorded migrations (001..005)" in result.stdout
    assert "no drift: the schema is what the 5 recorded migrations make" in result.stdout
    assert f"note: shadow database {leftover} exists on the server" in result.stdout
    assert f"DROP DATABASE {leftover} WITH (FORCE)" in result.stdout
    assert shadow_databases(pg_server) == []


def test_edited_applied_file_is_refused_before_replaying(
    run_invoke: Invoke, pg_server: PgServer, clone: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    edited = folder / "003_auth.sql"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n-- edited\n", encoding="utf-8")
    result = run_invoke("drift", "--database-url", clone, "--migrations", str(folder))
    assert result.returncode == 6, result.stdout + result.stderr
    assert "003_auth.sql: changed" in result.stderr
    assert "replaying" not in result.stdout
    assert shadow_databases(pg_server) == []


def test_row_level_security_turned_off_is_drift(run_invoke: Invoke, migrated_db: str) -> None:
    """012 isolates contacts; switching that off by hand (and dropping the policy) is drift."""
    same = run_invoke("drift", "--database-url", migrated_db)
    assert same.returncode == 0, same.stdout + same.stderr
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE contacts DISABLE ROW LEVEL SECURITY")
        conn.execute("DROP POLICY pol_contacts_tenant ON contacts")
    result = run_invoke("drift", "--database-url", migrated_db)
    assert result.returncode == DRIFT_EXIT, result.stdout + result.stderr
    lines = difference_lines(result.stdout)
    assert lines == [
        "~ row security public.contacts: expected enabled, not forced; found disabled, not forced",
        "- policy public.contacts.pol_contacts_tenant: expected AS PERMISSIVE FOR ALL TO "
        "alumoutreach_app USING ((tenant_id = public.current_tenant_id())) WITH CHECK "
        "((tenant_id = public.current_tenant_id())); found nothing",
    ], result.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_mid_replay_leaves_no_shadow_database(
    pg_server: PgServer, fresh_db: str, tmp_path: Path, signum: signal.Signals
) -> None:
    """A migration that sleeps only in a shadow database: interrupt drift while it sleeps."""
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    version = catalog.format_version(NEXT)
    slow = f"""
DO $$
BEGIN
    IF starts_with(current_database(), '{shadow.PREFIX}') THEN
        PERFORM pg_sleep(60);
    END IF;
END $$;
"""
    (folder / f"{version}_slow_in_shadow.sql").write_text(
        migration_sql(version, "slow_in_shadow", slow), encoding="utf-8"
    )
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        runner.migrate(conn, catalog.load(folder))
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "drift", "--database-url", fresh_db,
         "--migrations", str(folder)],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        with pg_server.admin() as conn:
            while time.monotonic() < deadline:
                sleeping = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE starts_with(datname, %s)"
                    " AND wait_event = 'PgSleep'",
                    (shadow.PREFIX,),
                ).fetchone()
                if sleeping and sleeping[0]:
                    break
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
            else:
                pytest.fail("the replay never reached the slow migration")
        assert len(shadow_databases(pg_server)) == 1
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert "interrupted: the target was only read and the shadow database is removed" in err
    assert "Traceback" not in err
    assert shadow_databases(pg_server) == []


def test_shadow_url_is_emptied_afterwards_and_must_be_empty(
    run_invoke: Invoke, pg_server: PgServer, template_db: str, fresh_db: str
) -> None:
    url = pg_server.url(template_db)
    result = run_invoke("drift", "--database-url", url, "--shadow-url", fresh_db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(--shadow-url)" in result.stdout and "no drift" in result.stdout
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert shadow.contents(conn) == []  # emptied again
    refused = run_invoke("drift", "--database-url", url, "--shadow-url", url)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--shadow-url postgresql://alumoutreach:***@" in refused.stderr
    assert "the database is not empty" in refused.stderr
    assert pg_server.password not in refused.stdout + refused.stderr
    assert "replaying" not in refused.stdout


@pytest.mark.slow
def test_a_read_only_role_without_createdb_gets_a_container_shadow(
    run_invoke: Invoke, pg_server: PgServer, clone: str
) -> None:
    """The target needs nothing but SELECT on schema_migrations, in read-only transactions;
    a role without CREATEDB gets its shadow in a throwaway container."""
    role = f"drift_reader_{os.getpid()}"
    with psycopg.connect(clone, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader-pw' NOCREATEDB")
        conn.execute(f"GRANT SELECT ON schema_migrations TO {role}")
        # Every transaction of the role is read-only: a write by drift would fail.
        conn.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
    try:
        url = psycopg.conninfo.make_conninfo(clone, user=role, password="reader-pw")
        result = run_invoke("drift", "--database-url", url)
        assert result.returncode == DRIFT_EXIT, result.stdout + result.stderr
        assert "into container alumdbshadow" in result.stdout
        # The grant that lets the role read the history is itself a difference.
        assert difference_lines(result.stdout) == [
            "~ privileges table public.schema_migrations: expected alumoutreach_app: SELECT; "
            f"found alumoutreach_app: SELECT; {role}: SELECT"
        ]
        left = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"name={shadow.CONTAINER_PREFIX}", "-q"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert left.stdout.strip() == ""
    finally:
        with psycopg.connect(clone, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON schema_migrations FROM {role}")
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize(
    "case",
    [
        (["--shadow-url", "mysql://u:secret-pw@h/db"], 2, "--shadow-url: scheme 'mysql'"),
        (["--shadow-url", "postgresql://h/db", "--shadow-container"], 2, "not both"),
        (["--migrations", "/nonexistent/migrations"], 3, "does not exist"),
    ],
    ids=["shadow-url-scheme", "two-shadows", "no-folder"],
)
def test_bad_drift_arguments(
    run_invoke: Invoke, pg_server: PgServer, template_db: str, case: tuple[list[str], int, str]
) -> None:
    args, code, message = case
    result = run_invoke("drift", "--database-url", pg_server.url(template_db), *args)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "secret-pw" not in result.stdout + result.stderr
    assert "replaying" not in result.stdout
