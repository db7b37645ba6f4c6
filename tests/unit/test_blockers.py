"""The pure parts of alumdb.blockers: the lock matrix, query masking, relations of SQL."""

from __future__ import annotations

from alumdb import blockers


def test_conflict_matrix_is_symmetric() -> None:
    for mode, conflicts in blockers.CONFLICTS.items():
        for other in conflicts:
            assert mode in blockers.CONFLICTS[other], (mode, other)


def test_access_share_only_conflicts_with_access_exclusive() -> None:
    assert blockers.CONFLICTS["AccessShareLock"] == {"AccessExclusiveLock"}
    assert len(blockers.CONFLICTS["AccessExclusiveLock"]) == 8


def test_mask_query_hides_literals_and_keeps_one_short_line() -> None:
    text = "ALTER ROLE app\n   PASSWORD 'it''s secret'   -- and more\n" + "x" * 100
    masked = blockers.mask_query(text)
    assert "secret" not in masked
    assert "\n" not in masked
    assert masked.startswith("ALTER ROLE app PASSWORD '?'")
    assert len(masked) == blockers.QUERY_CHARS
    assert masked.endswith("...")


def test_relations_in_names_every_relation_once_in_order() -> None:
    sql = (
        "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS nickname TEXT;\n"
        'ALTER TABLE crm."Deals" ADD CONSTRAINT fk_x FOREIGN KEY (a) REFERENCES tenants (id);\n'
        "CREATE INDEX IF NOT EXISTS idx_c ON contacts (tenant_id);\n"
    )
    assert blockers.relations_in(sql) == ["contacts", 'crm."Deals"', "tenants"]


def test_relations_in_of_sql_that_does_not_parse_is_empty() -> None:
    assert blockers.relations_in("ALTER TABLE contacts ADD COLUMN") == []


def test_describe_names_everything_and_the_sql_ends_the_session() -> None:
    blocker = blockers.Blocker(
        pid=4242,
        application_name="crm report",
        user="app",
        state="idle in transaction",
        xact_age=7.94,
        query_age=7.9,
        query="SELECT count(*) FROM contacts",
        xact_start=None,
        backend_start=None,
        relation="contacts",
        mode="AccessShareLock",
    )
    line = blocker.describe()
    for part in (
        "pid 4242",
        "'crm report'",
        "user app",
        "idle in transaction",
        "7.9s old",
        "SELECT count(*) FROM contacts",
        "holds AccessShareLock on contacts",
    ):
        assert part in line, part
    assert blocker.terminate_sql() == "SELECT pg_terminate_backend(4242);"
    assert blockers.summary([blocker] * 3).endswith("and 1 more session(s)")
    assert "no session" in blockers.summary([])


def test_relations_in_reads_the_statements_of_a_do_block() -> None:
    sql = (
        "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'ck') THEN\n"
        "    ALTER TABLE deals ADD CONSTRAINT ck CHECK (amount >= 0);\n  END IF;\nEND $$;\n"
        "DO LANGUAGE sql $$ SELECT 1 $$;\n"
    )
    assert blockers.relations_in(sql) == ["deals"]


def test_lock_mode_of_the_common_statements() -> None:
    assert blockers.lock_mode("CREATE INDEX i ON t (a)") == "ShareLock"
    assert blockers.lock_mode("CREATE INDEX CONCURRENTLY i ON t (a)") == "ShareUpdateExclusiveLock"
    assert (
        blockers.lock_mode("CREATE TRIGGER g BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()")
        == "ShareRowExclusiveLock"
    )
    assert blockers.lock_mode("ALTER TABLE t ADD COLUMN c int") == "AccessExclusiveLock"
    assert blockers.lock_mode("not sql at all") == "AccessExclusiveLock"


def test_only_the_concurrently_forms_let_traffic_pass_while_they_wait() -> None:
    for sql in (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
        "DROP INDEX CONCURRENTLY IF EXISTS i",
        "REINDEX INDEX CONCURRENTLY i",
    ):
        assert not blockers.queues_traffic(sql), sql
    for sql in ("CREATE INDEX i ON t (a)", "ALTER TABLE t ADD COLUMN c int", "DROP INDEX i"):
        assert blockers.queues_traffic(sql), sql
