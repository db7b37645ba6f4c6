"""`invoke seed`: realistic rows that keep every key, check and tenancy rule; dev only.

Databases come from the project's own pytest plugin (``alumdb_url``: a clone of the
migrated template on the harness's server).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from alumdb import seed as seed_engine
from alumdb import testdb
from tests.conftest import PgServer

pytestmark = pytest.mark.docker

ANCHOR = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
SMALL = seed_engine.options(2, "small", contacts=120, seed=7, anchor=ANCHOR)


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))
                   .fetchone()[0])  # type: ignore[index]
            for t in ("tenants", *seed_engine.TABLES)
        }  # fmt: skip


def recheck_constraints(url: str) -> int:
    """Re-validate every foreign key and CHECK against every row; returns how many.

    A constraint once valid is never re-checked by VALIDATE, so each is dropped and
    re-added NOT VALID, then validated (which reads every row), inside a transaction
    that is rolled back.
    """
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype IN ('f', 'c')"
            " AND connamespace = 'public'::regnamespace ORDER BY contype DESC, conname"
        ).fetchall()
        for table, name, definition in rows:
            t, c = sql.Identifier(table), sql.Identifier(name)
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(t, c))
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                    t, c, sql.SQL(definition)
                )
            )
            conn.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(t, c))
        conn.rollback()
    return len(rows)


def test_seed_small_preset_prints_rows_per_table_and_keeps_every_constraint(
    alumdb_url: str,
    run_invoke: Callable[..., Any],
    schema_dump: Callable[[str], str],
) -> None:
    before = schema_dump(alumdb_url)
    result = run_invoke("seed", "--database-url", alumdb_url, "--tenants", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("done: ") and "for 2 tenant(s)" in lines[-1]
    found = counts(alumdb_url)
    for table, count in found.items():
        assert count > 0, f"{table} is empty after seeding"
        assert any(line.split() == [table, f"{count:,}"] for line in lines), table
    assert "\r" not in result.stderr, "a progress bar was drawn into a pipe"
    assert schema_dump(alumdb_url) == before, "seeding changed the schema"
    assert recheck_constraints(alumdb_url) >= 150  # every FK and CHECK of 001..011

    with psycopg.connect(alumdb_url) as conn:
        statuses = {
            r[0] for r in conn.execute("SELECT DISTINCT status::text FROM pipeline_jobs").fetchall()
        }
        assert statuses == {"pending", "processing", "completed", "failed", "retrying"}
        for table in ("campaigns", "inbox_threads", "workflow_runs", "sequence_runs"):
            kinds = conn.execute(
                sql.SQL("SELECT count(DISTINCT status) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            assert kinds is not None and kinds[0] >= 4, f"{table}: too few statuses"
        # Tenancy: nothing of one tenant points at another's rows (the composite keys
        # guarantee it; this is the proof on the data).
        crossed = conn.execute(
            "SELECT count(*) FROM campaign_messages m JOIN contacts c ON c.id = m.contact_id"
            " WHERE c.tenant_id <> m.tenant_id"
        ).fetchone()
        assert crossed == (0,)


def test_copy_enforces_keys_and_checks(alumdb_url: str) -> None:
    """What the seed relies on: COPY checks foreign keys and CHECKs row by row."""
    seed_engine.seed(psycopg.connect(alumdb_url, autocommit=True), SMALL)
    with psycopg.connect(alumdb_url) as conn:
        tenant, contact = conn.execute("SELECT tenant_id, id FROM contacts LIMIT 1").fetchone()  # type: ignore[misc]
        other = conn.execute("SELECT id FROM tenants WHERE id <> %s LIMIT 1", (tenant,)).fetchone()[
            0
        ]  # type: ignore[index]
        bad_rows = {
            "another tenant's contact": (other, contact, "email", "x@example.com"),
            "an upper-case e-mail address": (tenant, contact, "email", "X@example.com"),
            "a phone number not in E.164": (tenant, contact, "sms", "555-0100"),
        }
        for why, row in bad_rows.items():
            with pytest.raises(psycopg.errors.IntegrityError), conn.transaction():
                with conn.cursor().copy(
                    "COPY channel_identifiers (tenant_id, contact_id, channel, value) FROM STDIN"
                ) as copy:
                    copy.write_row(row)
                pytest.fail(f"COPY accepted {why}")


def test_seed_is_deterministic_and_idempotent_per_tenant(
    alumdb_url: str, alumdb_template: testdb.Template, pg_server: PgServer
) -> None:
    with pg_server.admin() as admin:
        other = testdb.clone(admin, alumdb_template.name)
    try:
        with psycopg.connect(alumdb_url, autocommit=True) as conn:
            first = seed_engine.seed(conn, SMALL)
        assert first.seeded == ["seed7-t001", "seed7-t002"]
        # The same seed and anchor in another database: the same rows, ids included.
        with psycopg.connect(pg_server.url(other), autocommit=True) as conn:
            seed_engine.seed(conn, SMALL)
        # Everything but the times the database stamps itself (created_at defaults to now()).
        digest = (
            "SELECT md5(string_agg((to_jsonb(t) - 'created_at' - 'updated_at')::text, ','"
            " ORDER BY t.tenant_id, t.id)) FROM {} t"
        )
        for table in ("contacts", "channel_identifiers", "campaign_messages", "pipeline_jobs"):
            query = sql.SQL(digest).format(sql.Identifier(table))
            with psycopg.connect(alumdb_url) as a, psycopg.connect(pg_server.url(other)) as b:
                left, right = a.execute(query).fetchone(), b.execute(query).fetchone()
            assert left == right, f"{table} differs between two runs with one seed"

        before = counts(alumdb_url)
        with psycopg.connect(alumdb_url, autocommit=True) as conn:
            again = seed_engine.seed(conn, SMALL)
            assert again.seeded == [] and again.skipped == ["seed7-t001", "seed7-t002"]
            assert counts(alumdb_url) == before
            more = seed_engine.seed(
                conn, seed_engine.options(3, "small", contacts=120, seed=7, anchor=ANCHOR)
            )
        assert more.seeded == ["seed7-t003"] and more.skipped == ["seed7-t001", "seed7-t002"]
        assert counts(alumdb_url)["contacts"] == 360
    finally:
        pg_server.drop_database(other)


def test_seed_refuses_prod_and_non_dev_databases_and_changes_nothing(
    alumdb_url: str,
    alumdb_template: testdb.Template,
    run_invoke: Callable[..., Any],
    pg_server: PgServer,
) -> None:
    result = run_invoke("seed", "--env", "prod")
    assert result.returncode == 11
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "prod" in result.stderr and "Traceback" not in result.stderr

    # A database holding a tenant seed did not make is somebody's data.
    with psycopg.connect(alumdb_url) as conn:
        conn.execute("INSERT INTO tenants (slug, name) VALUES ('real-alumni', 'Real Alumni')")
    before = counts(alumdb_url)
    result = run_invoke("seed", "--database-url", alumdb_url)
    assert result.returncode == 11
    assert "1 tenant(s) that seed did not make" in result.stderr
    assert "--allow-non-dev" in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert counts(alumdb_url) == before
    result = run_invoke("seed", "--database-url", alumdb_url, "--allow-non-dev")
    assert result.returncode == 0, result.stderr

    # "prod" in its name (a restored copy, say), and a database that was never migrated.
    with pg_server.admin() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE crm_prod_copy TEMPLATE {}").format(
                sql.Identifier(alumdb_template.name)
            )
        )
    empty = pg_server.create_database()
    try:
        result = run_invoke("seed", "--database-url", pg_server.url("crm_prod_copy"))
        assert result.returncode == 11
        assert "its name 'crm_prod_copy' says prod" in result.stderr
        assert counts(pg_server.url("crm_prod_copy"))["contacts"] == 0
        result = run_invoke("seed", "--database-url", pg_server.url(empty))
        assert result.returncode == 11
        assert "run `invoke migrate` on it first" in result.stderr
    finally:
        pg_server.drop_database("crm_prod_copy")
        pg_server.drop_database(empty)


def test_seed_under_forced_row_level_security(alumdb_url: str) -> None:
    """An owner under FORCE ROW LEVEL SECURITY: COPY FROM is refused, the seed still loads."""
    with psycopg.connect(alumdb_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE seed_owner_rls LOGIN PASSWORD 'x' NOSUPERUSER")
        try:
            tables = ["tenants", *seed_engine.TABLES, "permissions"]
            for table in tables:
                t = sql.Identifier(table)
                conn.execute(sql.SQL("ALTER TABLE {} OWNER TO seed_owner_rls").format(t))
                if table == "permissions":
                    continue
                column = sql.Identifier("id" if table == "tenants" else "tenant_id")
                conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t))
                conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(t))
                conn.execute(
                    sql.SQL(
                        "CREATE POLICY p_tenant ON {} USING ({} ="
                        " NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
                    ).format(t, column)
                )
            as_owner = psycopg.conninfo.make_conninfo(
                alumdb_url, user="seed_owner_rls", password="x"
            )
            with psycopg.connect(as_owner, autocommit=True) as owner:
                report = seed_engine.seed(owner, SMALL)
                assert report.seeded == ["seed7-t001", "seed7-t002"]
                assert set(report.via_insert) == set(seed_engine.TABLES)
                # Fails closed without a tenant: the owner sees nothing.
                assert owner.execute("SELECT count(*) FROM contacts").fetchone() == (0,)
                again = seed_engine.seed(owner, SMALL)
                assert again.skipped == ["seed7-t001", "seed7-t002"]
            found = counts(alumdb_url)  # as the superuser: everything
            assert found["contacts"] == 240 and found["tenants"] == 2
        finally:
            conn.execute("REASSIGN OWNED BY seed_owner_rls TO CURRENT_USER")
            conn.execute("DROP OWNED BY seed_owner_rls")
            conn.execute("DROP ROLE seed_owner_rls")
