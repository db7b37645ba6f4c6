"""The schema migrations/ builds, checked on a real PostgreSQL 15.

The spec's enums, tables and dependency tree; idempotency through both the
compose loop (psql) and the runner; the tenancy rules (tenant_id everywhere,
composite keys, a cross-tenant reference refused); explicit names; the job
queue's dequeue; and the README's schema diagram being up to date.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors

from alumdb import catalog, diagram, runner
from tests.conftest import PgServer

pytestmark = pytest.mark.docker

ENUMS = {
    "contact_status": ["active", "inactive", "bounced", "unsubscribed", "archived"],
    "channel_type": ["email", "sms", "whatsapp", "push"],
    "segment_type": ["static", "dynamic", "event_driven"],
    "campaign_status": ["draft", "scheduled", "running", "completed", "cancelled", "failed"],
    "dispatch_status": ["pending", "sent", "delivered", "failed", "bounced", "opened", "clicked"],
    "thread_status": ["open", "closed", "pending", "snoozed"],
    "message_direction": ["inbound", "outbound"],
    "workflow_status": ["draft", "active", "paused", "archived"],
    "job_status": ["pending", "processing", "completed", "failed", "retrying"],
}

# (child, parent) for every edge of the spec's dependency tree, plus the link tables.
TREE = [
    ("users", "tenants"),
    ("roles", "tenants"),
    ("user_roles", "users"),
    ("user_roles", "roles"),
    ("role_permissions", "roles"),
    ("role_permissions", "permissions"),
    ("contacts", "tenants"),
    ("contact_tags", "contacts"),
    ("channel_identifiers", "contacts"),
    ("contact_attributes", "contacts"),
    ("contact_consents", "contacts"),
    ("contact_timeline_events", "contacts"),
    ("segments", "tenants"),
    ("segment_members", "segments"),
    ("templates", "tenants"),
    ("template_versions", "templates"),
    ("campaigns", "tenants"),
    ("campaign_runs", "campaigns"),
    ("campaign_messages", "campaigns"),
    ("inbox_threads", "tenants"),
    ("inbox_messages", "inbox_threads"),
    ("inbox_activities", "inbox_threads"),
    ("workflows", "tenants"),
    ("workflow_runs", "workflows"),
    ("workflow_node_runs", "workflows"),
    ("workflow_node_runs", "workflow_runs"),
    ("sequences", "tenants"),
    ("sequence_steps", "sequences"),
    ("sequence_runs", "sequences"),
    ("pipeline_jobs", "tenants"),
    ("pipeline_failures", "pipeline_jobs"),
]
TRACKING = {"schema_migrations", "schema_migrations_audit"}
# Tables that are deliberately not tenant-scoped (each says why above its CREATE TABLE).
GLOBAL_TABLES = {"tenants", "permissions", *TRACKING}
SPEC_TABLES = {"tenants"} | {child for child, _ in TREE} | {parent for _, parent in TREE}

DEQUEUE = """
WITH next AS (
    SELECT id, tenant_id FROM pipeline_jobs
    WHERE queue = 'default' AND status IN ('pending', 'retrying') AND run_at <= now()
    ORDER BY priority, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE pipeline_jobs j
SET status = 'processing', locked_at = now(), locked_by = %(worker)s, attempts = j.attempts + 1
FROM next WHERE j.tenant_id = next.tenant_id AND j.id = next.id
RETURNING j.id
"""

README = Path(__file__).resolve().parents[2] / "migrations" / "README.md"


# --- fixtures and helpers ----------------------------------------------------------


@pytest.fixture(scope="module")
def schema_db(pg_server: PgServer, migrations_dir: Path) -> Iterator[str]:
    """One database migrated by the runner, shared by this module's read-only checks.

    Tests that write data do it in a transaction they roll back.
    """
    name = pg_server.create_database()
    url = pg_server.url(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            runner.migrate(conn, catalog.load(migrations_dir))
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def conn(schema_db: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to ``schema_db`` whose work is always rolled back."""
    with psycopg.connect(schema_db) as connection:
        yield connection
        connection.rollback()


def sql_files(directory: Path) -> list[Path]:
    return [m.path for m in catalog.load(directory)]


def normalised(dump: str) -> str:
    """A schema dump without pg_dump's per-run random ``\\restrict`` key lines."""
    return "\n".join(
        line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


Params = Sequence[Any] | Mapping[str, Any] | None


def rows(conn: psycopg.Connection[Any], query: str, params: Params = None) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def tables(conn: psycopg.Connection[Any]) -> set[str]:
    return {
        r[0]
        for r in rows(
            conn,
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p')",
        )
    }


def tenant_tables(conn: psycopg.Connection[Any]) -> list[str]:
    return sorted(tables(conn) - GLOBAL_TABLES)


def new_tenant(conn: psycopg.Connection[Any], slug: str) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id", (slug, slug.title())
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def new_contact(conn: psycopg.Connection[Any], tenant: uuid.UUID, name: str) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO contacts (tenant_id, first_name) VALUES (%s, %s) RETURNING id",
        (tenant, name),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


# --- the spec's enums and tables ---------------------------------------------------


def test_enums_have_the_specs_values_in_order(conn: psycopg.Connection[Any]) -> None:
    found = {
        r[0]
        for r in rows(
            conn,
            "SELECT typname FROM pg_type WHERE typtype = 'e'"
            " AND typnamespace = 'public'::regnamespace",
        )
    }
    assert found == set(ENUMS)
    for name, values in ENUMS.items():
        (got,) = conn.execute(f"SELECT enum_range(NULL::{name})::text[]").fetchone() or [None]
        assert got == values, name


def test_every_spec_table_exists(conn: psycopg.Connection[Any]) -> None:
    assert tables(conn) >= SPEC_TABLES | TRACKING


@pytest.mark.parametrize(("child", "parent"), TREE, ids=[f"{c}->{p}" for c, p in TREE])
def test_foreign_key_follows_the_tree(
    conn: psycopg.Connection[Any], child: str, parent: str
) -> None:
    found = rows(
        conn,
        "SELECT conname FROM pg_constraint"
        " WHERE contype = 'f' AND conrelid = %s::regclass AND confrelid = %s::regclass",
        (child, parent),
    )
    assert found, f"{child} has no foreign key to {parent}"


# --- idempotency -------------------------------------------------------------------


def test_psql_path_twice_leaves_the_same_schema(
    fresh_db: str,
    apply_files: Callable[[str, list[Path]], None],
    schema_dump: Callable[[str], str],
    migrations_dir: Path,
) -> None:
    files = sql_files(migrations_dir)
    apply_files(fresh_db, files)
    first = normalised(schema_dump(fresh_db))
    with psycopg.connect(fresh_db) as c:
        recorded = rows(c, "SELECT version, name, executed_at FROM schema_migrations")
    apply_files(fresh_db, files)
    assert normalised(schema_dump(fresh_db)) == first
    with psycopg.connect(fresh_db) as c:
        again = rows(c, "SELECT version, name, executed_at FROM schema_migrations")
        ordered = [r[0] for r in rows(c, "SELECT version FROM schema_migrations ORDER BY version")]
    assert sorted(again) == sorted(recorded)
    assert ordered == [m.version for m in catalog.load(migrations_dir)]


def test_runner_twice_leaves_the_same_schema(
    migrated_db: str, schema_dump: Callable[[str], str], migrations_dir: Path
) -> None:
    first = normalised(schema_dump(migrated_db))
    with psycopg.connect(migrated_db, autocommit=True) as c:
        report = runner.migrate(c, catalog.load(migrations_dir))
    assert report.applied == []
    assert report.already_applied == len(catalog.load(migrations_dir))
    assert normalised(schema_dump(migrated_db)) == first


def test_psql_then_runner_and_back_leaves_the_same_schema(
    fresh_db: str,
    apply_files: Callable[[str, list[Path]], None],
    schema_dump: Callable[[str], str],
    migrations_dir: Path,
) -> None:
    """Every file re-run by psql on a runner-made database changes nothing either."""
    with psycopg.connect(fresh_db, autocommit=True) as c:
        runner.migrate(c, catalog.load(migrations_dir))
    first = normalised(schema_dump(fresh_db))
    apply_files(fresh_db, sql_files(migrations_dir))
    assert normalised(schema_dump(fresh_db)) == first


def test_database_stopped_halfway_completes_with_the_runner(
    fresh_db: str,
    schema_db: str,
    apply_files: Callable[[str, list[Path]], None],
    schema_dump: Callable[[str], str],
    migrations_dir: Path,
) -> None:
    loaded = catalog.load(migrations_dir)
    first_half = [m for m in loaded if m.number <= 5]
    apply_files(fresh_db, [m.path for m in first_half])
    with psycopg.connect(fresh_db, autocommit=True) as c:
        report = runner.migrate(c, loaded)
        checksums = dict(rows(c, "SELECT version::text, checksum::text FROM schema_migrations"))
    assert [m.version for m, _ in report.applied] == [m.version for m in loaded if m.number > 5]
    assert [m.version for m in report.adopted] == [m.version for m in first_half]
    assert checksums == {m.version: m.checksum for m in loaded}
    assert normalised(schema_dump(fresh_db)) == normalised(schema_dump(schema_db))


def test_versions_sort_numerically(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO schema_migrations (version, name) VALUES ('999', 'a'), ('1000', 'b')")
    ordered = [r[0] for r in rows(conn, "SELECT version FROM schema_migrations ORDER BY version")]
    assert ordered[-2:] == ["999", "1000"]


# --- tenancy -----------------------------------------------------------------------


def test_tenant_scoped_tables_have_tenant_id_timestamps_and_trigger(
    conn: psycopg.Connection[Any],
) -> None:
    scoped = tenant_tables(conn)
    assert len(scoped) >= len(SPEC_TABLES) - 2
    for table in scoped:
        columns = {
            r[0]: (r[1], r[2], r[3])
            for r in rows(
                conn,
                "SELECT attname, format_type(atttypid, atttypmod), attnotnull,"
                " pg_get_expr(d.adbin, d.adrelid)"
                " FROM pg_attribute a LEFT JOIN pg_attrdef d"
                "   ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            )
        }
        assert columns.get("tenant_id", (None,))[:2] == ("uuid", True), table
        for stamp in ("created_at", "updated_at"):
            assert columns.get(stamp) == ("timestamp with time zone", True, "now()"), (
                table,
                stamp,
            )
        tenant_fk = rows(
            conn,
            "SELECT confdeltype FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
            " WHERE contype = 'f' AND conrelid = %s::regclass"
            " AND confrelid = 'tenants'::regclass AND a.attname = 'tenant_id'"
            " AND cardinality(conkey) = 1",
            (table,),
        )
        assert tenant_fk == [("c",)], f"{table}: no ON DELETE CASCADE key to tenants"
        # tgtype bits: 1 = FOR EACH ROW, 2 = BEFORE, 16 = UPDATE.
        triggers = rows(
            conn,
            "SELECT tgname FROM pg_trigger"
            " WHERE tgrelid = %s::regclass AND NOT tgisinternal"
            " AND tgfoid = 'set_updated_at'::regproc AND tgtype & 19 = 19",
            (table,),
        )
        assert triggers == [(f"trg_{table}_updated_at",)], table


def test_updated_at_moves_forward_within_one_transaction(conn: psycopg.Connection[Any]) -> None:
    tenant = new_tenant(conn, "acme")
    stamps = []
    for name in ("Acme", "Acme Corp", "Acme Inc"):
        row = conn.execute(
            "UPDATE tenants SET name = %s WHERE id = %s RETURNING updated_at", (name, tenant)
        ).fetchone()
        assert row is not None
        stamps.append(row[0])
    assert stamps[0] < stamps[1] < stamps[2]


@pytest.mark.parametrize(
    "insert",
    [
        "INSERT INTO contact_tags (tenant_id, contact_id, tag) VALUES (%s, %s, 'vip')",
        "INSERT INTO channel_identifiers (tenant_id, contact_id, channel, value)"
        " VALUES (%s, %s, 'email', 'x@example.org')",
    ],
    ids=["contact_tags", "channel_identifiers"],
)
def test_cross_tenant_reference_is_refused(conn: psycopg.Connection[Any], insert: str) -> None:
    tenant_a = new_tenant(conn, "tenant-a")
    tenant_b = new_tenant(conn, "tenant-b")
    contact_a = new_contact(conn, tenant_a, "Ada")
    contact_b = new_contact(conn, tenant_b, "Bob")
    conn.execute(insert, (tenant_a, contact_a))  # the same tenant: accepted
    with pytest.raises(pg_errors.ForeignKeyViolation) as caught:
        conn.execute(insert.replace("vip", "other").replace("x@", "y@"), (tenant_a, contact_b))
    assert caught.value.sqlstate == "23503"


def test_keys_of_tenant_scoped_tables_include_tenant_id(conn: psycopg.Connection[Any]) -> None:
    scoped = tenant_tables(conn)
    missing = rows(
        conn,
        "SELECT t.relname, i.relname FROM pg_index x"
        " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace"
        " AND (x.indisprimary OR x.indisunique)"
        " AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid"
        "   AND a.attname = 'tenant_id' AND a.attnum = ANY(x.indkey::int2[]))",
        (scoped,),
    )
    assert missing == []
    # Foreign keys between tenant-scoped tables are composite, tenant_id to tenant_id.
    single = rows(
        conn,
        "SELECT c.conname FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class p ON p.oid = c.confrelid"
        " WHERE c.contype = 'f' AND t.relname = ANY(%s) AND p.relname = ANY(%s)"
        " AND NOT EXISTS (SELECT 1 FROM generate_subscripts(c.conkey, 1) s"
        "   JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = c.conkey[s]"
        "   JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[s]"
        "   WHERE ca.attname = 'tenant_id' AND pa.attname = 'tenant_id')",
        (scoped, scoped),
    )
    assert single == []


def test_deleting_a_tenant_removes_its_rows_only(conn: psycopg.Connection[Any]) -> None:
    tenant_a = new_tenant(conn, "gone")
    tenant_b = new_tenant(conn, "stays")
    new_contact(conn, tenant_a, "Ada")
    new_contact(conn, tenant_b, "Bob")
    conn.execute("DELETE FROM tenants WHERE id = %s", (tenant_a,))
    assert rows(conn, "SELECT tenant_id FROM contacts") == [(tenant_b,)]


# --- names -------------------------------------------------------------------------

AUTO_NAME = re.compile(r"_(pkey|key|fkey|check|idx|excl|not_null)$")


def generated(name: str, table: str) -> bool:
    """Whether ``name`` looks like PostgreSQL's own (``contacts_email_key``, ``users_pkey``)."""
    return name.startswith(f"{table}_") and AUTO_NAME.search(name) is not None


def test_no_generated_names(conn: psycopg.Connection[Any]) -> None:
    prefix = {"p": "pk", "f": "fk", "u": "uq", "c": "ck", "x": "ex"}
    bad = []
    for name, kind, table in rows(
        conn,
        "SELECT conname, contype::text, conrelid::regclass::text FROM pg_constraint"
        " WHERE connamespace = 'public'::regnamespace AND conrelid <> 0",
    ):
        wanted = f"{prefix.get(kind, '?')}_{table}"
        if generated(name, table) or not (name == wanted or name.startswith(wanted + "_")):
            bad.append(name)
    for name, table, unique in rows(
        conn,
        "SELECT i.relname, t.relname, x.indisunique FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " WHERE i.relnamespace = 'public'::regnamespace",
    ):
        allowed = ("pk_", "uq_") if unique else ("idx_",)
        if generated(name, table) or not any(
            name == f"{p}{table}" or name.startswith(f"{p}{table}_") for p in allowed
        ):
            bad.append(name)
    for (name,) in rows(
        conn,
        "SELECT tgname FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid"
        " WHERE t.relnamespace = 'public'::regnamespace AND NOT g.tgisinternal"
        " AND g.tgname NOT LIKE 'trg\\_' || t.relname || '\\_%%'",
    ):
        bad.append(name)
    assert bad == []


def test_every_foreign_key_is_indexed(conn: psycopg.Connection[Any]) -> None:
    """An index leads with the key's columns, or a unique index lies within them."""
    unindexed = rows(
        conn,
        "SELECT c.conname FROM pg_constraint c"
        " WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"
        " AND NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.conrelid AND ("
        "   x.indpred IS NULL AND ("
        "     (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)] @> c.conkey"
        "     OR (x.indisunique AND c.conkey @> x.indkey::int2[]))))",
    )
    assert unindexed == []


# --- the job queue -----------------------------------------------------------------


def enqueue_many(conn: psycopg.Connection[Any], tenants: list[uuid.UUID], count: int) -> None:
    """``count`` jobs: most finished, the rest pending over two queues and a few tenants."""
    conn.execute(
        "INSERT INTO pipeline_jobs (tenant_id, queue, task_name, status, priority, run_at,"
        " attempts, completed_at)"
        " SELECT (%s::uuid[])[1 + g %% cardinality(%s::uuid[])],"
        "   CASE WHEN g %% 2 = 0 THEN 'default' ELSE 'emails' END, 'contacts.sync',"
        "   CASE WHEN g %% 10 = 0 THEN 'pending' ELSE 'completed' END::job_status,"
        "   (g %% 3)::smallint, now() - g * interval '1 second',"
        "   CASE WHEN g %% 10 = 0 THEN 0 ELSE 1 END,"
        "   CASE WHEN g %% 10 = 0 THEN NULL ELSE now() END"
        " FROM generate_series(1, %s) AS g",
        (tenants, tenants, count),
    )


def test_dequeue_uses_the_partial_index(conn: psycopg.Connection[Any]) -> None:
    tenants = [new_tenant(conn, f"queue-{i}") for i in range(3)]
    enqueue_many(conn, tenants, 2000)
    conn.execute("ANALYZE pipeline_jobs")
    plan = "\n".join(r[0] for r in rows(conn, "EXPLAIN " + DEQUEUE, {"limit": 10, "worker": "w1"}))
    assert "idx_pipeline_jobs_dequeue" in plan, plan


def test_two_workers_dequeue_disjoint_jobs(fresh_db: str, migrations_dir: Path) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as setup:
        runner.migrate(setup, catalog.load(migrations_dir))
        tenant = new_tenant(setup, "workers")
        setup.execute(
            "INSERT INTO pipeline_jobs (tenant_id, task_name, run_at)"
            " SELECT %s, 'contacts.sync', now() - g * interval '1 second'"
            " FROM generate_series(1, 20) AS g",
            (tenant,),
        )
    with psycopg.connect(fresh_db) as first, psycopg.connect(fresh_db) as second:
        # first keeps its transaction (and row locks) open while second dequeues.
        got_first = {r[0] for r in rows(first, DEQUEUE, {"limit": 5, "worker": "w1"})}
        got_second = {r[0] for r in rows(second, DEQUEUE, {"limit": 5, "worker": "w2"})}
        first.commit()
        second.commit()
        assert len(got_first) == len(got_second) == 5
        assert got_first.isdisjoint(got_second)
        states = rows(
            first,
            "SELECT status::text, locked_by, attempts, count(*) FROM pipeline_jobs"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2",
        )
    assert states == [
        ("pending", None, 0, 10),
        ("processing", "w1", 1, 5),
        ("processing", "w2", 1, 5),
    ]


def test_queue_checks(conn: psycopg.Connection[Any]) -> None:
    tenant = new_tenant(conn, "checks")
    insert = "INSERT INTO pipeline_jobs (tenant_id, task_name, dedup_key, status, completed_at)"
    conn.execute(insert + " VALUES (%s, 'a.b', 'k1', 'pending', NULL)", (tenant,))
    with pytest.raises(pg_errors.UniqueViolation), conn.transaction():
        conn.execute(insert + " VALUES (%s, 'a.b', 'k1', 'retrying', NULL)", (tenant,))
    # A finished job does not block a new one with the same key.
    conn.execute(insert + " VALUES (%s, 'a.b', 'k2', 'completed', now())", (tenant,))
    conn.execute(insert + " VALUES (%s, 'a.b', 'k2', 'pending', NULL)", (tenant,))
    for bad in (
        "UPDATE pipeline_jobs SET attempts = max_attempts + 1",
        "UPDATE pipeline_jobs SET status = 'processing'",  # processing needs the lock columns
        "UPDATE pipeline_jobs SET locked_at = now(), locked_by = 'w'",  # locked needs processing
    ):
        with pytest.raises(pg_errors.CheckViolation), conn.transaction():
            conn.execute(bad)


def test_template_delete_cascades_past_its_current_version(conn: psycopg.Connection[Any]) -> None:
    tenant = new_tenant(conn, "templates")
    row = conn.execute(
        "INSERT INTO templates (tenant_id, name, channel) VALUES (%s, 'welcome', 'email')"
        " RETURNING id",
        (tenant,),
    ).fetchone()
    assert row is not None
    template = row[0]
    conn.execute(
        "INSERT INTO template_versions (tenant_id, template_id, version, body)"
        " VALUES (%s, %s, 1, 'Hello')",
        (tenant, template),
    )
    conn.execute("UPDATE templates SET current_version = 1 WHERE id = %s", (template,))
    with pytest.raises(pg_errors.ForeignKeyViolation), conn.transaction():
        conn.execute("DELETE FROM template_versions WHERE template_id = %s", (template,))
    with pytest.raises(pg_errors.ForeignKeyViolation), conn.transaction():
        conn.execute("UPDATE templates SET current_version = 2 WHERE id = %s", (template,))
    conn.execute("DELETE FROM templates WHERE id = %s", (template,))
    assert rows(conn, "SELECT 1 FROM template_versions WHERE template_id = %s", (template,)) == []


# --- the README's diagram ----------------------------------------------------------


def test_readme_erd_is_current(schema_db: str) -> None:
    with psycopg.connect(schema_db) as c:
        rendered = diagram.render_erd(c)
    assert rendered == diagram.readme_erd(README), (
        "the schema diagram in migrations/README.md is stale: run `invoke erd` and commit it"
    )
