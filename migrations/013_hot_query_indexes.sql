-- alumdb:no-transaction
-- ============================================================
-- Migration: 013_hot_query_indexes.sql
-- Purpose: Indexes the hot-query catalogue found missing at 1,000,000 contacts
-- ============================================================

-- Found by bench/queries.sql on 100 tenants x 10,000 contacts (bench/results/queries.md):
-- both queries read every row of the tenant where an index answers with a few pages
-- (contact by phone: all 10,000 contacts through idx_contacts_status, 10.9 ms, then
-- 0.1 ms; all threads by last activity: a sort of all the tenant's threads, 0.9 ms,
-- then 0.2 ms; on a small database both were sequential scans). Built
-- CONCURRENTLY: contacts and inbox_threads are large and written all day, and a plain
-- CREATE INDEX would block those writes for the whole build.

-- A build that failed half-way leaves an INVALID index under the name, which
-- IF NOT EXISTS would then keep forever: drop such a leftover first.
DO $$
DECLARE
    leftover TEXT;
BEGIN
    FOR leftover IN
        SELECT c.relname FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT i.indisvalid AND n.nspname = current_schema()
          AND c.relname IN ('idx_contacts_phone', 'idx_inbox_threads_last_message_at')
    LOOP
        EXECUTE format('DROP INDEX %I', leftover);
    END LOOP;
END $$;

-- Search and imports find a contact by phone number as by e-mail (idx_contacts_email);
-- inbound messages match on channel_identifiers, but the contact list's search box and
-- CSV imports match on contacts.phone, which had no index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_contacts_phone ON contacts (tenant_id, phone);

-- The inbox's "All" tab: every thread of a tenant by last activity, whatever its status.
-- idx_inbox_threads_status_last_message_at serves one status at a time only. DESC
-- matches the query's ORDER BY last_message_at DESC (NULLS FIRST, the default for DESC).
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_inbox_threads_last_message_at
    ON inbox_threads (tenant_id, last_message_at DESC);

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('013', 'hot_query_indexes')
ON CONFLICT (version) DO NOTHING;
