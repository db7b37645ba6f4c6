-- ============================================================
-- Migration: 007_campaigns.sql
-- Purpose: Campaign management
-- ============================================================

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'campaign_status' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE campaign_status AS ENUM ('draft', 'scheduled', 'running', 'completed', 'cancelled', 'failed');
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'dispatch_status' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE dispatch_status AS ENUM ('pending', 'sent', 'delivered', 'failed', 'bounced', 'opened', 'clicked');
    END IF;
END $$;

-- ------------------------------------------------------------
-- campaigns: one message to one segment over one channel
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS campaigns (
    id           UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    UUID NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    status       campaign_status NOT NULL DEFAULT 'draft',
    channel      channel_type NOT NULL,
    -- The audience; a deleted segment leaves the campaign (and its history) in place.
    segment_id   UUID,
    -- A template in use cannot be deleted (RESTRICT): sent messages refer to it.
    template_id  UUID,
    scheduled_at TIMESTAMPTZ,
    started_at   TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    created_by   UUID,
    settings     JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_campaigns PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_campaigns_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_campaigns_segment FOREIGN KEY (tenant_id, segment_id)
        REFERENCES segments (tenant_id, id) ON DELETE SET NULL (segment_id),
    CONSTRAINT fk_campaigns_template FOREIGN KEY (tenant_id, template_id)
        REFERENCES templates (tenant_id, id) ON DELETE RESTRICT,
    CONSTRAINT fk_campaigns_created_by FOREIGN KEY (tenant_id, created_by)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by),
    CONSTRAINT ck_campaigns_name CHECK (length(btrim(name)) > 0),
    CONSTRAINT ck_campaigns_template CHECK (status = 'draft' OR template_id IS NOT NULL),
    CONSTRAINT ck_campaigns_scheduled_at CHECK (status <> 'scheduled' OR scheduled_at IS NOT NULL),
    CONSTRAINT ck_campaigns_completed_at CHECK (status <> 'completed' OR completed_at IS NOT NULL),
    CONSTRAINT ck_campaigns_settings CHECK (jsonb_typeof(settings) = 'object')
);

CREATE INDEX IF NOT EXISTS idx_campaigns_status ON campaigns (tenant_id, status);
CREATE INDEX IF NOT EXISTS idx_campaigns_segment ON campaigns (tenant_id, segment_id);
CREATE INDEX IF NOT EXISTS idx_campaigns_template ON campaigns (tenant_id, template_id);
CREATE INDEX IF NOT EXISTS idx_campaigns_created_by ON campaigns (tenant_id, created_by);
-- The scheduler looks for due campaigns of every tenant; only scheduled rows are indexed.
CREATE INDEX IF NOT EXISTS idx_campaigns_due ON campaigns (scheduled_at) WHERE status = 'scheduled';

CREATE OR REPLACE TRIGGER trg_campaigns_updated_at
    BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- campaign_runs: each execution of a campaign (recurring campaigns run again)
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS campaign_runs (
    id              UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id       UUID NOT NULL,
    campaign_id     UUID NOT NULL,
    run_number      INTEGER NOT NULL,
    -- A run is never a draft nor scheduled: the campaign is.
    status          campaign_status NOT NULL DEFAULT 'running',
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    -- Counters kept by the sender as messages progress (cheap dashboards).
    total_count     INTEGER NOT NULL DEFAULT 0,
    sent_count      INTEGER NOT NULL DEFAULT 0,
    delivered_count INTEGER NOT NULL DEFAULT 0,
    failed_count    INTEGER NOT NULL DEFAULT 0,
    opened_count    INTEGER NOT NULL DEFAULT 0,
    clicked_count   INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_campaign_runs PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_campaign_runs_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_campaign_runs_campaign FOREIGN KEY (tenant_id, campaign_id)
        REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_campaign_runs_campaign_run_number UNIQUE (tenant_id, campaign_id, run_number),
    -- The target of campaign_messages' run key: a message's run belongs to its campaign.
    CONSTRAINT uq_campaign_runs_campaign_id UNIQUE (tenant_id, campaign_id, id),
    CONSTRAINT ck_campaign_runs_run_number CHECK (run_number >= 1),
    CONSTRAINT ck_campaign_runs_status
        CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
    CONSTRAINT ck_campaign_runs_finished_at CHECK (finished_at >= started_at),
    CONSTRAINT ck_campaign_runs_counters CHECK (
        total_count >= 0 AND sent_count >= 0 AND delivered_count >= 0
        AND failed_count >= 0 AND opened_count >= 0 AND clicked_count >= 0
    )
);

CREATE OR REPLACE TRIGGER trg_campaign_runs_updated_at
    BEFORE UPDATE ON campaign_runs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- campaign_messages: one message to one contact in one run
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS campaign_messages (
    id                  UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id           UUID NOT NULL,
    campaign_id         UUID NOT NULL,
    campaign_run_id     UUID NOT NULL,
    contact_id          UUID NOT NULL,
    channel             channel_type NOT NULL,
    status              dispatch_status NOT NULL DEFAULT 'pending',
    -- The address used, as it was at send time.
    recipient           TEXT,
    -- The provider's id (SES, Twilio, ...): delivery webhooks find the message by it.
    provider_message_id TEXT,
    sent_at             TIMESTAMPTZ,
    delivered_at        TIMESTAMPTZ,
    opened_at           TIMESTAMPTZ,
    clicked_at          TIMESTAMPTZ,
    failed_at           TIMESTAMPTZ,
    error               TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_campaign_messages PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_campaign_messages_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_campaign_messages_campaign FOREIGN KEY (tenant_id, campaign_id)
        REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE,
    -- Includes campaign_id: the run must be a run of this message's campaign.
    CONSTRAINT fk_campaign_messages_run FOREIGN KEY (tenant_id, campaign_id, campaign_run_id)
        REFERENCES campaign_runs (tenant_id, campaign_id, id) ON DELETE CASCADE,
    -- Erasing a contact erases what was sent to them.
    CONSTRAINT fk_campaign_messages_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    -- A run sends a contact at most one message per channel (a retried send
    -- updates the row instead of adding one).
    CONSTRAINT uq_campaign_messages_run_contact_channel
        UNIQUE (tenant_id, campaign_run_id, contact_id, channel),
    -- NULLs are distinct: only messages the provider accepted must differ.
    CONSTRAINT uq_campaign_messages_provider_message_id
        UNIQUE (tenant_id, channel, provider_message_id),
    CONSTRAINT ck_campaign_messages_sent_at
        CHECK (status IN ('pending', 'failed') OR sent_at IS NOT NULL)
);

-- Serves both campaign keys and the sender's "pending messages of this run"
-- (queries name the campaign and the run).
CREATE INDEX IF NOT EXISTS idx_campaign_messages_campaign_run_status
    ON campaign_messages (tenant_id, campaign_id, campaign_run_id, status);
CREATE INDEX IF NOT EXISTS idx_campaign_messages_contact ON campaign_messages (tenant_id, contact_id);

CREATE OR REPLACE TRIGGER trg_campaign_messages_updated_at
    BEFORE UPDATE ON campaign_messages
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('007', 'campaigns')
ON CONFLICT (version) DO NOTHING;
