"""Tenant isolation in the database itself (migrations/012_row_level_security.sql).

Proved on real PostgreSQL the way the CRM meets it: as LOGIN roles that are members
of alumoutreach_app or alumoutreach_worker, neither superuser nor owner of anything.
Every tenant table is found in the catalog (a table added later is checked too), and
two tenants, A and B, have rows in each of them.

Roles are cluster-wide and the test server is shared by databases of tests running
side by side: alumoutreach_app and alumoutreach_worker are never dropped or altered
here, every login role made here has a name of its own and is dropped at the end, and
the tests that need the two roles absent hide them by renaming them inside a
transaction that is rolled back.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from alumdb import catalog, runner
from alumdb.tenancy import APP_ROLE, TENANT_SETTING, WORKER_ROLE
from tests.conftest import PgServer
from tests.helpers import MIGRATIONS

pytestmark = pytest.mark.docker

Conn = psycopg.Connection[Any]
Query = str | sql.Composed
RLS_FILE = MIGRATIONS / "012_row_level_security.sql"
QUEUE_TABLES = {"pipeline_jobs", "pipeline_failures"}

# One row per tenant in every tenant table (parents first), written by the owner.
SEED = [
    "INSERT INTO users (tenant_id, email, display_name) VALUES (%(t)s, 'staff@x.org', 'Staff')",
    "INSERT INTO roles (tenant_id, name) VALUES (%(t)s, 'Owner')",
    "INSERT INTO user_roles (tenant_id, user_id, role_id) SELECT %(t)s, u.id, r.id"
    " FROM users u JOIN roles r USING (tenant_id) WHERE u.tenant_id = %(t)s",
    "INSERT INTO permissions (key) VALUES ('contacts.read') ON CONFLICT (key) DO NOTHING",
    "INSERT INTO role_permissions (tenant_id, role_id, permission_id) SELECT %(t)s, r.id, p.id"
    " FROM roles r, permissions p WHERE r.tenant_id = %(t)s",
    "INSERT INTO contacts (tenant_id, email, first_name) VALUES (%(t)s, 'ada@x.org', 'Ada')",
    "INSERT INTO contact_tags (tenant_id, contact_id, tag)"
    " SELECT %(t)s, id, 'vip' FROM contacts WHERE tenant_id = %(t)s",
    "INSERT INTO channel_identifiers (tenant_id, contact_id, channel, value)"
    " SELECT %(t)s, id, 'email', 'ada@x.org' FROM contacts WHERE tenant_id = %(t)s",
    "INSERT INTO contact_attributes (tenant_id, contact_id, key, value)"
    " SELECT %(t)s, id, 'class', '\"2020\"' FROM contacts WHERE tenant_id = %(t)s",
    "INSERT INTO contact_consents (tenant_id, contact_id, channel, source)"
    " SELECT %(t)s, id, 'email', 'import' FROM contacts WHERE tenant_id = %(t)s",
    "INSERT INTO contact_timeline_events (tenant_id, contact_id, event_type)"
    " SELECT %(t)s, id, 'contact.created' FROM contacts WHERE tenant_id = %(t)s",
    "INSERT INTO segments (tenant_id, name) VALUES (%(t)s, 'Everyone')",
    "INSERT INTO segment_members (tenant_id, segment_id, contact_id) SELECT %(t)s, s.id, c.id"
    " FROM segments s JOIN contacts c USING (tenant_id) WHERE s.tenant_id = %(t)s",
    "INSERT INTO templates (tenant_id, name, channel) VALUES (%(t)s, 'welcome', 'email')",
    "INSERT INTO template_versions (tenant_id, template_id, version, body)"
    " SELECT %(t)s, id, 1, 'Hello' FROM templates WHERE tenant_id = %(t)s",
    "INSERT INTO campaigns (tenant_id, name, channel) VALUES (%(t)s, 'Spring', 'email')",
    "INSERT INTO campaign_runs (tenant_id, campaign_id, run_number)"
    " SELECT %(t)s, id, 1 FROM campaigns WHERE tenant_id = %(t)s",
    "INSERT INTO campaign_messages (tenant_id, campaign_id, campaign_run_id, contact_id, channel)"
    " SELECT %(t)s, r.campaign_id, r.id, c.id, 'email'"
    " FROM campaign_runs r JOIN contacts c USING (tenant_id) WHERE r.tenant_id = %(t)s",
    "INSERT INTO inbox_threads (tenant_id, contact_id, channel)"
    " SELECT %(t)s, id, 'email' FROM contacts WHERE tenant_id = %(t)s",
    "INSERT INTO inbox_messages (tenant_id, thread_id, direction, channel)"
    " SELECT %(t)s, id, 'inbound', 'email' FROM inbox_threads WHERE tenant_id = %(t)s",
    "INSERT INTO inbox_activities (tenant_id, thread_id, activity_type)"
    " SELECT %(t)s, id, 'note' FROM inbox_threads WHERE tenant_id = %(t)s",
    "INSERT INTO workflows (tenant_id, name) VALUES (%(t)s, 'Onboarding')",
    "INSERT INTO workflow_runs (tenant_id, workflow_id, status)"
    " SELECT %(t)s, id, 'running' FROM workflows WHERE tenant_id = %(t)s",
    "INSERT INTO workflow_node_runs (tenant_id, workflow_id, workflow_run_id, node_key)"
    " SELECT %(t)s, workflow_id, id, 'start' FROM workflow_runs WHERE tenant_id = %(t)s",
    "INSERT INTO sequences (tenant_id, name) VALUES (%(t)s, 'Drip')",
    "INSERT INTO sequence_steps (tenant_id, sequence_id, step_number, channel, template_id)"
    " SELECT %(t)s, s.id, 1, 'email', t.id"
    " FROM sequences s JOIN templates t USING (tenant_id) WHERE s.tenant_id = %(t)s",
    "INSERT INTO sequence_runs (tenant_id, sequence_id, contact_id, status)"
    " SELECT %(t)s, s.id, c.id, 'paused'"
    " FROM sequences s JOIN contacts c USING (tenant_id) WHERE s.tenant_id = %(t)s",
    "INSERT INTO pipeline_jobs (tenant_id, task_name, run_at)"
    " SELECT %(t)s, 'contacts.sync', now() - g * interval '1 second'"
    " FROM generate_series(1, 3) AS g",
    "INSERT INTO pipeline_failures (tenant_id, job_id, attempt, error)"
    " SELECT %(t)s, id, 1, 'timeout' FROM pipeline_jobs WHERE tenant_id = %(t)s",
]


# --- tables, tenants, roles --------------------------------------------------------


def tenant_tables(conn: Conn) -> list[str]:
    """``tenants`` and every table of schema public with a ``tenant_id`` column."""
    found = conn.execute(
        "SELECT c.relname FROM pg_class c"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'"
        "  AND NOT a.attisdropped"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
        " ORDER BY 1"
    ).fetchall()
    return ["tenants", *(str(r[0]) for r in found)]


def column(table: str) -> str:
    """The column that says which tenant a row of ``table`` belongs to."""
    return "id" if table == "tenants" else "tenant_id"


def count(conn: Conn, table: str, where: str = "true", *params: Any) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        sql.Identifier(table), sql.SQL(where)
    )
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def counts_by_tenant(owner: Conn, tables: list[str], tenant: uuid.UUID) -> dict[str, int]:
    return {t: count(owner, t, f"{column(t)} = %s", tenant) for t in tables}


def a_row_of_each(owner: Conn, tables: list[str], tenant: uuid.UUID) -> dict[str, str]:
    """One row of ``tenant`` from each table, as JSON (to copy it with jsonb_populate_record)."""
    rows: dict[str, str] = {}
    for table in tables:
        query = sql.SQL("SELECT to_jsonb(x)::text FROM {} x WHERE {} = %s LIMIT 1").format(
            sql.Identifier(table), sql.Identifier(column(table))
        )
        row = owner.execute(query, (tenant,)).fetchone()
        assert row is not None, f"{table} has no row of {tenant}"
        rows[table] = str(row[0])
    return rows


def seed_tenant(owner: Conn, slug: str) -> uuid.UUID:
    """A tenant with one row (three jobs) in every tenant table, written as the owner."""
    row = owner.execute(
        "INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id", (slug, slug.title())
    ).fetchone()
    assert row is not None
    tenant = uuid.UUID(str(row[0]))
    for statement in SEED:
        owner.execute(statement, {"t": tenant})
    return tenant


def set_tenant(conn: Conn, tenant: uuid.UUID | str) -> None:
    """What the application does at the start of each transaction."""
    conn.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(tenant)))


def as_login(url: str, role: str, password: str) -> str:
    return make_conninfo(url, user=role, password=password)


@dataclass
class Logins:
    """LOGIN roles made for this module, each a member of one group role; dropped at the end."""

    admin_url: str
    made: list[str]

    def make(self, member_of: str | None, *attributes: str) -> tuple[str, str]:
        name = f"rls_{secrets.token_hex(5)}"
        password = secrets.token_hex(12)
        statement = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} {}").format(
            sql.Identifier(name), sql.Literal(password), sql.SQL(" ".join(attributes))
        )
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(statement)
            self.made.append(name)
            if member_of is not None:
                admin.execute(
                    sql.SQL("GRANT {} TO {}").format(
                        sql.Identifier(member_of), sql.Identifier(name)
                    )
                )
        return name, password


@pytest.fixture(scope="module")
def logins(pg_server: PgServer) -> Iterator[Logins]:
    made = Logins(pg_server.url(), [])
    try:
        yield made
    finally:
        with psycopg.connect(pg_server.url(), autocommit=True) as admin:
            for name in made.made:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@dataclass(frozen=True)
class Seeded:
    url: str  # as the owner (the session's superuser, who ran the migrations)
    a: uuid.UUID
    b: uuid.UUID
    app: str  # as a LOGIN member of alumoutreach_app
    worker: str  # as a LOGIN member of alumoutreach_worker


def seeded_database(pg_server: PgServer, logins: Logins) -> Iterator[Seeded]:
    name = pg_server.create_database()
    url = pg_server.url(name)
    try:
        with psycopg.connect(url, autocommit=True) as owner:
            runner.migrate(owner, catalog.load(MIGRATIONS))
            a = seed_tenant(owner, f"alpha-{name[2:8]}")
            b = seed_tenant(owner, f"beta-{name[2:8]}")
        app = as_login(url, *logins.make(APP_ROLE))
        worker = as_login(url, *logins.make(WORKER_ROLE))
        yield Seeded(url, a, b, app, worker)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(scope="module")
def seeded(pg_server: PgServer, logins: Logins) -> Iterator[Seeded]:
    """Two tenants' rows everywhere; tests that write roll back or change nothing."""
    yield from seeded_database(pg_server, logins)


@pytest.fixture
def own_seeded(pg_server: PgServer, logins: Logins) -> Iterator[Seeded]:
    """Like ``seeded``, for a test that commits changes."""
    yield from seeded_database(pg_server, logins)


def sqlstate_of(conn: Conn, query: Query, params: Any = None) -> str | None:
    """The SQLSTATE ``query`` fails with inside a savepoint of ``conn``, or None."""
    try:
        with conn.transaction():
            conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


# --- the application role ----------------------------------------------------------


def test_the_login_roles_are_neither_superuser_nor_owner(seeded: Seeded) -> None:
    for url, group in ((seeded.app, APP_ROLE), (seeded.worker, WORKER_ROLE)):
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT rolsuper, rolbypassrls, pg_has_role(current_user, %s, 'USAGE'),"
                " (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid)"
                " FROM pg_roles r WHERE rolname = current_user",
                (group,),
            ).fetchone()
            assert row == (False, False, True, 0)
    with psycopg.connect(seeded.url) as owner:
        groups = owner.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls FROM pg_roles"
            " WHERE rolname IN (%s, %s) ORDER BY 1",
            (APP_ROLE, WORKER_ROLE),
        ).fetchall()
        assert groups == [(APP_ROLE, False, False, False), (WORKER_ROLE, False, False, False)]
        inherits = owner.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (WORKER_ROLE, APP_ROLE))
        assert inherits.fetchone() == (True,)
        assert owner.execute(
            "SELECT count(*) FROM pg_authid WHERE rolname IN (%s, %s) AND rolpassword IS NOT NULL",
            (APP_ROLE, WORKER_ROLE),
        ).fetchone() == (0,)


def test_tenant_a_sees_its_own_rows_only(seeded: Seeded) -> None:
    with psycopg.connect(seeded.url) as owner:
        tables = tenant_tables(owner)
        expected = counts_by_tenant(owner, tables, seeded.a)
        of_b = counts_by_tenant(owner, tables, seeded.b)
    assert [t for t in tables if not expected[t] or not of_b[t]] == [], "seed every table"
    assert len(tables) >= 29
    wrong: list[str] = []
    with psycopg.connect(seeded.app) as conn:
        set_tenant(conn, seeded.a)
        for table in tables:
            seen = count(conn, table)
            others = count(conn, table, f"{column(table)} <> %s", seeded.a)
            of_b_seen = count(conn, table, f"{column(table)} = %s", seeded.b)
            if (seen, others, of_b_seen) != (expected[table], 0, 0):
                wrong.append(f"{table}: saw {seen} rows, {others} of others, {of_b_seen} of B")
        by_id = conn.execute("SELECT count(*) FROM tenants WHERE id = %s", (seeded.b,)).fetchone()
    assert wrong == []
    assert by_id == (0,)


def test_writes_that_would_place_a_row_in_another_tenant_fail_with_42501(
    seeded: Seeded,
) -> None:
    """INSERT of a row of B, and UPDATE of A's rows into B, while A is set."""
    with psycopg.connect(seeded.url) as owner:
        tables = tenant_tables(owner)
        rows_of_b = a_row_of_each(owner, tables, seeded.b)
    allowed: list[str] = []
    with psycopg.connect(seeded.app) as conn:
        set_tenant(conn, seeded.a)
        for table in tables:
            row = rows_of_b[table]
            insert = sql.SQL("INSERT INTO {0} SELECT * FROM jsonb_populate_record(NULL::{0}, %s)")
            update = sql.SQL("UPDATE {0} SET {1} = %s WHERE {1} = %s")
            ident, col = sql.Identifier(table), sql.Identifier(column(table))
            states = (
                sqlstate_of(conn, insert.format(ident), (row,)),
                sqlstate_of(conn, update.format(ident, col), (seeded.b, seeded.a)),
            )
            if states != ("42501", "42501"):
                allowed.append(f"{table}: INSERT -> {states[0]}, UPDATE -> {states[1]}")
        # Writing its own rows works: the policies are not simply "deny".
        new = conn.execute(
            "INSERT INTO contacts (tenant_id, first_name) VALUES (%s, 'Grace') RETURNING id",
            (seeded.a,),
        ).fetchone()
        assert new is not None
        moved = conn.execute("UPDATE contacts SET last_name = 'Hopper' WHERE id = %s", (new[0],))
        assert moved.rowcount == 1
        conn.rollback()
    assert allowed == []


NO_TENANT = ["never-set", "empty", "reset", "ended-with-its-transaction"]


def start_without_tenant(conn: Conn, how: str, tenant: uuid.UUID) -> None:
    if how == "empty":
        set_tenant(conn, "")
    elif how == "reset":  # a session-level value, then RESET: current_setting says ''
        conn.execute("SELECT set_config(%s, %s, false)", (TENANT_SETTING, str(tenant)))
        conn.execute(sql.SQL("RESET {}").format(sql.SQL(TENANT_SETTING)))
    elif how == "ended-with-its-transaction":  # set_config(..., true) ends with COMMIT
        set_tenant(conn, tenant)
        assert count(conn, "contacts") > 0
        conn.commit()


@pytest.mark.parametrize("how", NO_TENANT)
def test_without_a_tenant_nothing_is_visible_and_no_write_succeeds(
    seeded: Seeded, how: str
) -> None:
    with psycopg.connect(seeded.url) as owner:
        tables = tenant_tables(owner)
        before = {t: count(owner, t) for t in tables}
        rows_of_a = a_row_of_each(owner, tables, seeded.a)
    leaks: list[str] = []
    with psycopg.connect(seeded.app) as conn:
        start_without_tenant(conn, how, seeded.a)
        setting = conn.execute("SELECT current_setting(%s, true)", (TENANT_SETTING,)).fetchone()
        assert setting in {(None,), ("",)}
        visible = {t: count(conn, t) for t in tables}  # no error, and the transaction lives on
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert {t: n for t, n in visible.items() if n} == {}
        for table in tables:
            ident = sql.Identifier(table)
            row = rows_of_a[table]
            insert = sql.SQL("INSERT INTO {0} SELECT * FROM jsonb_populate_record(NULL::{0}, %s)")
            state = sqlstate_of(conn, insert.format(ident), (row,))
            if state != "42501":
                leaks.append(f"{table}: INSERT -> {state}")
            touched = conn.execute(
                sql.SQL("UPDATE {} SET updated_at = updated_at").format(ident)
            ).rowcount
            deleted: int | str = "refused"
            if table != "tenants":  # the application may not delete tenants at all
                deleted = conn.execute(sql.SQL("DELETE FROM {}").format(ident)).rowcount
            if (touched, deleted) not in {(0, 0), (0, "refused")}:
                leaks.append(f"{table}: UPDATE {touched} rows, DELETE {deleted} rows")
        conn.commit()
    with psycopg.connect(seeded.url) as owner:
        assert {t: count(owner, t) for t in tables} == before
    assert leaks == []


def test_a_tenant_id_that_is_not_a_uuid_is_an_error_not_a_match(seeded: Seeded) -> None:
    with psycopg.connect(seeded.app) as conn:
        set_tenant(conn, "alpha")
        with pytest.raises(pg_errors.InvalidTextRepresentation):
            conn.execute("SELECT count(*) FROM contacts")


def test_the_application_cannot_switch_the_policies_off(seeded: Seeded) -> None:
    """The bypasses a non-owner might try, each refused with 42501."""
    attempts = {
        "row_security off": "SET LOCAL row_security = off; SELECT count(*) FROM contacts",
        "disable": "ALTER TABLE contacts DISABLE ROW LEVEL SECURITY",
        "no force": "ALTER TABLE contacts NO FORCE ROW LEVEL SECURITY",
        "drop policy": "DROP POLICY pol_contacts_tenant ON contacts",
        "truncate": "TRUNCATE contacts",
        "write tracking": "DELETE FROM schema_migrations",
        "delete a tenant": "DELETE FROM tenants",
    }
    with psycopg.connect(seeded.app) as conn:
        set_tenant(conn, seeded.a)
        states: dict[str, str | None] = {}
        for what, query in attempts.items():
            states[what] = sqlstate_of(conn, query)
        # The spec's status query works for the application too (read only).
        versions = conn.execute(
            "SELECT version, name, executed_at FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert states == dict.fromkeys(attempts, "42501")
    assert [v for v, _, _ in versions] == [m.version for m in catalog.load(MIGRATIONS)]


# --- the job workers ---------------------------------------------------------------


def documented_dequeue() -> str:
    """The dequeue query exactly as 011_pipeline.sql documents it, with named parameters."""
    text = (MIGRATIONS / "011_pipeline.sql").read_text(encoding="utf-8")
    start = text.index("--   WITH next AS (")
    end = text.index("--   RETURNING j.*;", start) + len("--   RETURNING j.*;")
    query = "\n".join(line.removeprefix("--   ") for line in text[start:end].splitlines())
    for number, name in (("$1", "queue"), ("$2", "limit"), ("$3", "worker")):
        query = query.replace(number, f"%({name})s")
    return query.rstrip(";")


def test_workers_dequeue_every_tenants_jobs_and_read_no_contact(own_seeded: Seeded) -> None:
    s = own_seeded
    query = documented_dequeue()
    with psycopg.connect(s.url) as owner:
        tables = tenant_tables(owner)
        jobs = count(owner, "pipeline_jobs")
        failures = count(owner, "pipeline_failures")
    with psycopg.connect(s.worker) as first, psycopg.connect(s.worker) as second:
        cursor = first.execute(query, {"queue": "default", "limit": 4, "worker": "w1"})
        mine = cursor.fetchall()
        names = [d.name for d in cursor.description or ()]
        # second dequeues while first still holds its rows: SKIP LOCKED, no overlap
        theirs = second.execute(query, {"queue": "default", "limit": 10, "worker": "w2"}).fetchall()
        tenant_at, id_at = names.index("tenant_id"), names.index("id")
        got = [(r[tenant_at], r[id_at]) for r in mine + theirs]
        assert len(got) == len(set(got)) == jobs == 6
        assert {t for t, _ in got} == {s.a, s.b}
        # Nothing else of either tenant: every other tenant table looks empty.
        seen = {t: count(first, t) for t in tables if t not in QUEUE_TABLES}
        assert {t: n for t, n in seen.items() if n} == {}
        assert count(first, "pipeline_failures") == failures
        # A queue row never changes tenant; the worker deletes no job. The row moved is
        # one `first` holds: a row `second` holds would make this wait for `second`,
        # which this same thread drives (which rows each got depends on the dequeue's
        # order among equal priorities).
        tenant, job = got[0]
        move = "UPDATE pipeline_jobs SET tenant_id = %s WHERE id = %s"
        assert sqlstate_of(first, move, (s.b if tenant == s.a else s.a, job)) == "42501"
        assert first.execute("DELETE FROM pipeline_jobs").rowcount == 0
        # A failure is recorded the application's way: with the job's tenant set.
        record = (
            "INSERT INTO pipeline_failures (tenant_id, job_id, attempt, error)"
            " SELECT tenant_id, id, 2, 'boom' FROM pipeline_jobs WHERE tenant_id = %s LIMIT 1"
        )
        assert sqlstate_of(first, record, (s.a,)) == "42501"
        set_tenant(first, s.a)
        assert first.execute(record, (s.a,)).rowcount == 1
        assert count(first, "contacts") == 1  # now it is tenant A's work
        first.commit()
        second.commit()
    with psycopg.connect(s.url) as owner:
        states = owner.execute(
            "SELECT status::text, count(*) FROM pipeline_jobs GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert states == [("processing", 6)]


# --- the meta-test: no tenant table without isolation ------------------------------


def isolation_gaps(conn: Conn) -> list[str]:
    """What keeps a tenant table from being isolated: one line per table at fault.

    Each table with tenant_id (and tenants) needs row-level security enabled, not
    forced (see 012 on FORCE), and a policy for alumoutreach_app on all commands
    whose USING and WITH CHECK are `<column> = current_tenant_id()`. Any other policy
    that applies to alumoutreach_app (or to everyone) would widen what it sees, and
    is a gap too, except the workers' on the queue tables.
    """
    wanted = "({} = current_tenant_id())"
    gaps: list[str] = []
    for table in tenant_tables(conn):
        enabled, forced = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
            (table,),
        ).fetchone() or (False, False)
        policies = conn.execute(
            "SELECT polname, polcmd::text, polpermissive,"
            " array(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END"
            "       FROM unnest(polroles) AS r ORDER BY 1),"
            " pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)"
            " FROM pg_policy WHERE polrelid = %s::regclass",
            (table,),
        ).fetchall()
        expression = wanted.format(column(table))
        tenant_policy = [
            p for p in policies if p[1:4] == ("*", True, [APP_ROLE]) and p[4:] == (expression,) * 2
        ]
        if not enabled:
            gaps.append(f"{table}: row-level security is not enabled")
        if forced:
            gaps.append(f"{table}: FORCE ROW LEVEL SECURITY (012 decided against it)")
        if not tenant_policy:
            gaps.append(f"{table}: no policy for {APP_ROLE} USING and WITH CHECK {expression}")
        for name, cmd, permissive, roles, _, _ in policies:
            if name in {p[0] for p in tenant_policy}:
                continue
            worker_queue = table in QUEUE_TABLES and roles == [WORKER_ROLE] and cmd in {"r", "w"}
            if permissive and not worker_queue:
                gaps.append(f"{table}: policy {name} ({cmd}, {roles}) widens what is visible")
    return gaps


def test_every_tenant_table_is_isolated(seeded: Seeded) -> None:
    with psycopg.connect(seeded.url) as owner:
        tables = tenant_tables(owner)
        assert "tenants" in tables and "contacts" in tables
        assert isolation_gaps(owner) == []
        # The workers' policies are where they belong and nowhere else.
        worker_policies = owner.execute(
            "SELECT tablename, policyname, cmd FROM pg_policies"
            " WHERE %s = ANY(roles) ORDER BY 1, 2",
            (WORKER_ROLE,),
        ).fetchall()
    assert {t for t, _, _ in worker_policies} == QUEUE_TABLES
    assert sorted({c for _, _, c in worker_policies}) == ["SELECT", "UPDATE"]


def test_the_meta_test_catches_a_table_that_slips_through(migrated_db: str) -> None:
    ddl = (
        "CREATE TABLE contact_notes (id uuid NOT NULL DEFAULT gen_random_uuid(),"
        " tenant_id uuid NOT NULL REFERENCES tenants (id), body text)"
    )
    with psycopg.connect(migrated_db) as owner:
        owner.execute(ddl)
        assert isolation_gaps(owner) == [
            "contact_notes: row-level security is not enabled",
            "contact_notes: no policy for alumoutreach_app USING and WITH CHECK"
            " (tenant_id = current_tenant_id())",
        ]
        owner.execute("ALTER TABLE contact_notes ENABLE ROW LEVEL SECURITY")
        owner.execute(
            "CREATE POLICY pol_contact_notes_tenant ON contact_notes TO alumoutreach_app"
            " USING (tenant_id = current_tenant_id())"
            " WITH CHECK (tenant_id = current_tenant_id())"
        )
        assert isolation_gaps(owner) == []
        owner.execute("CREATE POLICY pol_contact_notes_all ON contacts FOR SELECT USING (true)")
        assert isolation_gaps(owner) == [
            "contacts: policy pol_contact_notes_all (r, ['public']) widens what is visible"
        ]
        owner.execute("ALTER TABLE contacts FORCE ROW LEVEL SECURITY")
        assert "contacts: FORCE ROW LEVEL SECURITY (012 decided against it)" in isolation_gaps(
            owner
        )
        owner.rollback()


# --- performance: the tenant predicate uses the (tenant_id, ...) indexes -----------


@pytest.fixture(scope="module")
def loaded(pg_server: PgServer, logins: Logins) -> Iterator[Seeded]:
    """20 tenants x 250 contacts, each with a thread of 3 messages; 5 segments each; jobs."""
    name = pg_server.create_database()
    url = pg_server.url(name)
    try:
        with psycopg.connect(url, autocommit=True) as owner:
            runner.migrate(owner, catalog.load(MIGRATIONS))
            for statement in (
                "INSERT INTO tenants (slug, name) SELECT 'load-' || g, 'Load ' || g"
                " FROM generate_series(1, 20) AS g",
                "INSERT INTO contacts (tenant_id, email, first_name)"
                " SELECT t.id, 'grad' || g || '@example.org', 'Grad' FROM tenants t,"
                " generate_series(1, 250) AS g",
                "INSERT INTO segments (tenant_id, name) SELECT t.id, 'segment ' || g"
                " FROM tenants t, generate_series(1, 5) AS g",
                "INSERT INTO segment_members (tenant_id, segment_id, contact_id)"
                " SELECT s.tenant_id, s.id, c.id FROM segments s JOIN contacts c USING (tenant_id)"
                " WHERE hashtext(c.id::text || s.id::text) & 3 = 0",
                "INSERT INTO inbox_threads (tenant_id, contact_id, channel)"
                " SELECT tenant_id, id, 'email' FROM contacts",
                "INSERT INTO inbox_messages (tenant_id, thread_id, direction, channel, body)"
                " SELECT tenant_id, id, 'inbound', 'email', 'hello' FROM inbox_threads,"
                " generate_series(1, 3)",
                "INSERT INTO pipeline_jobs (tenant_id, task_name, status, attempts, completed_at)"
                " SELECT t.id, 'contacts.sync',"
                "  CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'completed' END::job_status,"
                "  CASE WHEN g % 10 = 0 THEN 0 ELSE 1 END,"
                "  CASE WHEN g % 10 = 0 THEN NULL ELSE now() END"
                " FROM tenants t, generate_series(1, 500) AS g",
                "ANALYZE",
            ):
                owner.execute(statement)
            first = owner.execute("SELECT id FROM tenants ORDER BY slug LIMIT 1").fetchone()
            assert first is not None
        app = as_login(url, *logins.make(APP_ROLE))
        worker = as_login(url, *logins.make(WORKER_ROLE))
        yield Seeded(url, uuid.UUID(str(first[0])), uuid.UUID(int=0), app, worker)
    finally:
        pg_server.drop_database(name)


@dataclass(frozen=True)
class Scan:
    node: str
    relation: str
    index: str | None
    condition: str


def scans(conn: Conn, query: str, params: dict[str, Any]) -> list[Scan]:
    """Every scan node of the plan of ``query`` (EXPLAIN, FORMAT JSON)."""
    row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(query), params).fetchone()
    assert row is not None
    found: list[Scan] = []

    def walk(node: dict[str, Any], relation: str = "") -> None:
        kind = str(node.get("Node Type"))
        here = str(node.get("Relation Name") or relation)
        if "Scan" in kind and kind not in {"CTE Scan", "Subquery Scan", "Function Scan"}:
            found.append(
                Scan(kind, here, node.get("Index Name"), str(node.get("Index Cond") or ""))
            )
        for child in node.get("Plans", []):
            walk(child, here if kind == "Bitmap Heap Scan" else "")

    walk(row[0][0]["Plan"])
    return found


def first_row(conn: Conn, query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_common_lookups_use_the_tenant_indexes(loaded: Seeded) -> None:
    with psycopg.connect(loaded.url) as owner:
        thread = first_row(owner, "SELECT id FROM inbox_threads WHERE tenant_id = %s", loaded.a)
        segment = first_row(owner, "SELECT id FROM segments WHERE tenant_id = %s", loaded.a)
        contact = first_row(owner, "SELECT id FROM contacts WHERE tenant_id = %s", loaded.a)
    lookups = {
        "contact by email": (
            "SELECT * FROM contacts WHERE email = %(v)s",
            "grad7@example.org",
            None,
        ),
        "contact by id": ("SELECT * FROM contacts WHERE id = %(v)s", contact, "pk_contacts"),
        "a thread's messages": (
            "SELECT * FROM inbox_messages WHERE thread_id = %(v)s ORDER BY sent_at",
            thread,
            "idx_inbox_messages_thread_sent_at",
        ),
        "a segment's members": (
            "SELECT contact_id FROM segment_members WHERE segment_id = %(v)s",
            segment,
            "pk_segment_members",
        ),
    }
    with psycopg.connect(loaded.app) as conn:
        set_tenant(conn, loaded.a)
        for what, (query, value, index) in lookups.items():
            plan = scans(conn, query, {"v": value})
            assert [s for s in plan if s.node == "Seq Scan"] == [], (what, plan)
            indexed = [s for s in plan if s.index is not None]
            assert indexed, (what, plan)
            assert all("current_setting('app.tenant_id'" in s.condition for s in indexed), plan
            if index is not None:
                assert [s.index for s in indexed] == [index], (what, plan)
                assert re.search(r"\b(thread_id|segment_id|id) = ", indexed[0].condition), plan
        assert count(conn, "contacts", "email = %s", "grad7@example.org") == 1


def test_the_dequeue_uses_its_partial_index_for_the_worker(loaded: Seeded) -> None:
    with psycopg.connect(loaded.worker) as conn:
        plan = scans(conn, documented_dequeue(), {"queue": "default", "limit": 10, "worker": "w"})
    assert [s for s in plan if s.node == "Seq Scan"] == [], plan
    assert "idx_pipeline_jobs_dequeue" in [s.index for s in plan], plan


def test_email_lookup_narrows_by_email_once_citext_equality_is_leakproof(
    loaded: Seeded,
) -> None:
    """The README's note on citext: under row-level security only LEAKPROOF operators may
    become index conditions before the policy's, and citext's `=` is not marked so; a
    superuser who marks it gets the email into the index condition."""
    query = "SELECT * FROM contacts WHERE email = %(v)s"
    flag = "ALTER FUNCTION citext_eq(citext, citext) {}"
    with psycopg.connect(loaded.app) as conn:
        set_tenant(conn, loaded.a)
        before = [s for s in scans(conn, query, {"v": "grad7@example.org"}) if s.index]
    assert before and "email" not in before[0].condition, before
    with psycopg.connect(loaded.url, autocommit=True) as owner:
        owner.execute(flag.format("LEAKPROOF"))
        try:
            with psycopg.connect(loaded.app) as conn:
                set_tenant(conn, loaded.a)
                after = [s for s in scans(conn, query, {"v": "grad7@example.org"}) if s.index]
        finally:
            owner.execute(flag.format("NOT LEAKPROOF"))
    assert [s.index for s in after] == ["idx_contacts_email"], after
    assert "email = " in after[0].condition, after


# --- idempotence -------------------------------------------------------------------


def test_running_012_again_changes_nothing_and_takes_no_exclusive_lock(
    migrated_db: str,
    apply_files: Callable[[str, list[Path]], None],
    schema_dump: Callable[[str], str],
) -> None:
    first = schema_dump(migrated_db)
    apply_files(migrated_db, [RLS_FILE])  # the compose loop's way: psql -1 per file
    assert schema_dump(migrated_db) == first
    apply_files(migrated_db, [m.path for m in catalog.load(MIGRATIONS)])
    assert schema_dump(migrated_db) == first
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        again = runner.migrate(conn, catalog.load(MIGRATIONS))
    assert again.applied == []
    assert schema_dump(migrated_db) == first
    with psycopg.connect(migrated_db) as conn:
        conn.execute(RLS_FILE.read_text(encoding="utf-8"))
        exclusive = conn.execute(
            "SELECT relation::regclass::text FROM pg_locks WHERE pid = pg_backend_pid()"
            " AND locktype = 'relation' AND mode = 'AccessExclusiveLock'"
        ).fetchall()
        conn.rollback()
    assert exclusive == []


# --- the owner: FORCE not set, and a non-superuser owner runs 012 ------------------


@dataclass(frozen=True)
class Owned:
    owner: str  # the non-superuser owner with CREATEROLE, as whom migrations ran
    owner_url: str
    admin_url: str  # the session's superuser, same database
    dbname: str


@pytest.fixture
def owned(pg_server: PgServer, logins: Logins) -> Iterator[Owned]:
    """A database owned by a non-superuser with CREATEROLE, migrated by it up to 011."""
    role, password = logins.make(None, "CREATEROLE")
    name = pg_server.create_database()
    url = pg_server.url(name)
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    owner_url = as_login(url, role, password)
    try:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            runner.migrate(conn, catalog.load(MIGRATIONS), runner.Options(target="011"))
        yield Owned(role, owner_url, url, name)
    finally:
        pg_server.drop_database(name)


@contextmanager
def roles_hidden(admin: Conn) -> Iterator[None]:
    """Inside ``admin``'s open transaction, the two roles look absent; rolled back after."""
    suffix = secrets.token_hex(4)
    for role in (APP_ROLE, WORKER_ROLE):
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists:
            admin.execute(
                sql.SQL("ALTER ROLE {} RENAME TO {}").format(
                    sql.Identifier(role), sql.Identifier(f"{role}_hidden_{suffix}")
                )
            )
    try:
        yield
    finally:
        admin.rollback()


def test_a_non_superuser_owner_with_createrole_creates_the_roles(owned: Owned) -> None:
    text = RLS_FILE.read_text(encoding="utf-8")
    with psycopg.connect(owned.admin_url) as admin, roles_hidden(admin):
        admin.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owned.owner)))
        admin.execute(text)
        admin.execute("RESET ROLE")
        made = admin.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls, rolinherit FROM pg_roles"
            " WHERE rolname IN (%s, %s) ORDER BY 1",
            (APP_ROLE, WORKER_ROLE),
        ).fetchall()
        member = admin.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (WORKER_ROLE, APP_ROLE))
        assert member.fetchone() == (True,)
    assert made == [
        (APP_ROLE, False, False, False, True),
        (WORKER_ROLE, False, False, False, True),
    ]
    # With the roles there (the usual case: another database made them), the runner,
    # as the same owner, applies 012 and then finds nothing to do.
    with psycopg.connect(owned.owner_url, autocommit=True) as conn:
        first = runner.migrate(conn, catalog.load(MIGRATIONS))
        again = runner.migrate(conn, catalog.load(MIGRATIONS))
        assert isolation_gaps(conn) == []
    assert [m.version for m, _ in first.applied] == [
        m.version for m in catalog.load(MIGRATIONS) if m.number >= 12
    ]  # 012 and whatever follows it
    assert again.applied == []


def test_without_createrole_a_missing_role_is_a_clear_error(owned: Owned, logins: Logins) -> None:
    plain, _ = logins.make(None)
    with psycopg.connect(owned.admin_url) as admin, roles_hidden(admin):
        admin.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(plain)))
        with pytest.raises(pg_errors.InsufficientPrivilege) as refused:
            admin.execute(RLS_FILE.read_text(encoding="utf-8"))
    diag = refused.value.diag
    assert diag.message_primary == f"role {APP_ROLE} does not exist and {plain} may not create it"
    assert diag.message_hint is not None
    assert f"CREATE ROLE {APP_ROLE} NOLOGIN" in diag.message_hint


def test_a_role_that_bypasses_row_level_security_stops_the_migration(owned: Owned) -> None:
    with psycopg.connect(owned.admin_url) as admin, roles_hidden(admin):
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN BYPASSRLS").format(sql.Identifier(APP_ROLE)))
        with pytest.raises(pg_errors.InsufficientPrivilege) as refused:
            admin.execute(RLS_FILE.read_text(encoding="utf-8"))
    assert "bypasses row-level security" in str(refused.value.diag.message_primary)


def test_the_owner_is_not_under_the_policies(owned: Owned, pg_server: PgServer) -> None:
    """012 does not FORCE row-level security: the owner (here not a superuser) sees every
    tenant's rows without app.tenant_id, and pg_dump as the owner dumps them all. Forced,
    the same dump would fail: the reason written in 012."""
    with psycopg.connect(owned.owner_url, autocommit=True) as owner:
        runner.migrate(owner, catalog.load(MIGRATIONS))
        a = seed_tenant(owner, "owner-a")
        b = seed_tenant(owner, "owner-b")
        superuser = owner.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert superuser.fetchone() == (False,)
        assert count(owner, "contacts") == 2
        assert count(owner, "tenants") == 2
    dump = pg_server.exec(
        "pg_dump", "--data-only", "--table=contacts", "-U", owned.owner, "-d", owned.dbname
    )
    assert dump.returncode == 0, dump.stderr.decode()
    assert str(a) in dump.stdout.decode() and str(b) in dump.stdout.decode()
    with psycopg.connect(owned.owner_url) as owner:
        owner.execute("ALTER TABLE contacts FORCE ROW LEVEL SECURITY")
        owner.execute("SET LOCAL row_security = off")  # what pg_dump sets
        with pytest.raises(pg_errors.InsufficientPrivilege):
            owner.execute("SELECT count(*) FROM contacts")
        owner.rollback()
