-- ============================================================
-- Migration: 008_inbox.sql
-- Purpose: Unified inbox
-- ============================================================

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'thread_status' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE thread_status AS ENUM ('open', 'closed', 'pending', 'snoozed');
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'message_direction' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE message_direction AS ENUM ('inbound', 'outbound');
    END IF;
END $$;

-- ------------------------------------------------------------
-- inbox_threads: one conversation with one contact on one channel
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS inbox_threads (
    id               UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id        UUID NOT NULL,
    contact_id       UUID NOT NULL,
    channel          channel_type NOT NULL,
    status           thread_status NOT NULL DEFAULT 'open',
    subject          TEXT,
    -- The staff member handling it; unassigned when that user is deleted.
    assigned_user_id UUID,
    last_message_at  TIMESTAMPTZ,
    snoozed_until    TIMESTAMPTZ,
    closed_at        TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_inbox_threads PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_inbox_threads_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_inbox_threads_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_inbox_threads_assigned_user FOREIGN KEY (tenant_id, assigned_user_id)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (assigned_user_id),
    CONSTRAINT ck_inbox_threads_snoozed_until CHECK (status <> 'snoozed' OR snoozed_until IS NOT NULL),
    CONSTRAINT ck_inbox_threads_closed_at CHECK (status <> 'closed' OR closed_at IS NOT NULL)
);

-- The inbox view: a tenant's threads by status, most recent first.
CREATE INDEX IF NOT EXISTS idx_inbox_threads_status_last_message_at
    ON inbox_threads (tenant_id, status, last_message_at DESC);
CREATE INDEX IF NOT EXISTS idx_inbox_threads_contact ON inbox_threads (tenant_id, contact_id);
-- "My threads", and the assigned-user key.
CREATE INDEX IF NOT EXISTS idx_inbox_threads_assigned_user_status
    ON inbox_threads (tenant_id, assigned_user_id, status);
-- The job that wakes snoozed threads scans every tenant; only snoozed rows are indexed.
CREATE INDEX IF NOT EXISTS idx_inbox_threads_snoozed_until
    ON inbox_threads (snoozed_until) WHERE status = 'snoozed';

CREATE OR REPLACE TRIGGER trg_inbox_threads_updated_at
    BEFORE UPDATE ON inbox_threads
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- inbox_messages: what was said, in either direction
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS inbox_messages (
    id                  UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id           UUID NOT NULL,
    thread_id           UUID NOT NULL,
    direction           message_direction NOT NULL,
    channel             channel_type NOT NULL,
    body                TEXT NOT NULL DEFAULT '',
    attachments         JSONB NOT NULL DEFAULT '[]'::jsonb,
    -- The staff member who wrote an outbound reply (NULL for inbound and automated).
    sender_user_id      UUID,
    provider_message_id TEXT,
    -- Delivery state of outbound messages; inbound ones have none.
    dispatch_status     dispatch_status,
    sent_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_inbox_messages PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_inbox_messages_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_inbox_messages_thread FOREIGN KEY (tenant_id, thread_id)
        REFERENCES inbox_threads (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_inbox_messages_sender_user FOREIGN KEY (tenant_id, sender_user_id)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (sender_user_id),
    -- Providers retry webhooks: the same inbound message must not be stored twice.
    -- NULLs are distinct, so messages without a provider id are not affected.
    CONSTRAINT uq_inbox_messages_provider_message_id
        UNIQUE (tenant_id, channel, provider_message_id),
    CONSTRAINT ck_inbox_messages_dispatch_status
        CHECK (direction = 'outbound' OR dispatch_status IS NULL),
    CONSTRAINT ck_inbox_messages_sender_user
        CHECK (direction = 'outbound' OR sender_user_id IS NULL),
    CONSTRAINT ck_inbox_messages_attachments CHECK (jsonb_typeof(attachments) = 'array')
);

-- A thread's messages in order (also the thread key).
CREATE INDEX IF NOT EXISTS idx_inbox_messages_thread_sent_at
    ON inbox_messages (tenant_id, thread_id, sent_at);
CREATE INDEX IF NOT EXISTS idx_inbox_messages_sender_user ON inbox_messages (tenant_id, sender_user_id);

CREATE OR REPLACE TRIGGER trg_inbox_messages_updated_at
    BEFORE UPDATE ON inbox_messages
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- inbox_activities: assignments, status changes, internal notes
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS inbox_activities (
    id            UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id     UUID NOT NULL,
    thread_id     UUID NOT NULL,
    -- NULL for the system (automations) and after the user is deleted.
    actor_user_id UUID,
    -- 'assigned', 'status_changed', 'note', ...: a format check rather than a
    -- list, so the application can add kinds without a migration.
    activity_type TEXT NOT NULL,
    payload       JSONB NOT NULL DEFAULT '{}'::jsonb,
    occurred_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_inbox_activities PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_inbox_activities_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_inbox_activities_thread FOREIGN KEY (tenant_id, thread_id)
        REFERENCES inbox_threads (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_inbox_activities_actor_user FOREIGN KEY (tenant_id, actor_user_id)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (actor_user_id),
    CONSTRAINT ck_inbox_activities_activity_type CHECK (activity_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    CONSTRAINT ck_inbox_activities_payload CHECK (jsonb_typeof(payload) = 'object')
);

CREATE INDEX IF NOT EXISTS idx_inbox_activities_thread_occurred_at
    ON inbox_activities (tenant_id, thread_id, occurred_at);
CREATE INDEX IF NOT EXISTS idx_inbox_activities_actor_user
    ON inbox_activities (tenant_id, actor_user_id);

CREATE OR REPLACE TRIGGER trg_inbox_activities_updated_at
    BEFORE UPDATE ON inbox_activities
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('008', 'inbox')
ON CONFLICT (version) DO NOTHING;
