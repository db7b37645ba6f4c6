-- ============================================================
-- Migration: 010_sequences.sql
-- Purpose: Drip sequences
-- ============================================================

-- A sequence is a fixed list of timed steps a contact is enrolled in (a
-- simpler, linear cousin of workflows); its lifecycle is the same, so it
-- reuses workflow_status (created in 009).
CREATE TABLE IF NOT EXISTS sequences (
    id            UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id     UUID NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    status        workflow_status NOT NULL DEFAULT 'draft',
    -- Stop a contact's run when they reply in the inbox.
    exit_on_reply BOOLEAN NOT NULL DEFAULT true,
    created_by    UUID,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_sequences PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_sequences_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_sequences_created_by FOREIGN KEY (tenant_id, created_by)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by),
    CONSTRAINT uq_sequences_name UNIQUE (tenant_id, name),
    CONSTRAINT ck_sequences_name CHECK (length(btrim(name)) > 0)
);

CREATE INDEX IF NOT EXISTS idx_sequences_created_by ON sequences (tenant_id, created_by);

CREATE OR REPLACE TRIGGER trg_sequences_updated_at
    BEFORE UPDATE ON sequences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE IF NOT EXISTS sequence_steps (
    id          UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id   UUID NOT NULL,
    sequence_id UUID NOT NULL,
    step_number INTEGER NOT NULL,
    name        TEXT,
    -- Wait after the previous step (after enrolment for step 1).
    delay       INTERVAL NOT NULL DEFAULT interval '0',
    channel     channel_type NOT NULL,
    -- A template a step sends cannot be deleted (RESTRICT).
    template_id UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_sequence_steps PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_sequence_steps_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_sequence_steps_sequence FOREIGN KEY (tenant_id, sequence_id)
        REFERENCES sequences (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_sequence_steps_template FOREIGN KEY (tenant_id, template_id)
        REFERENCES templates (tenant_id, id) ON DELETE RESTRICT,
    CONSTRAINT uq_sequence_steps_sequence_step_number UNIQUE (tenant_id, sequence_id, step_number),
    CONSTRAINT ck_sequence_steps_step_number CHECK (step_number >= 1),
    CONSTRAINT ck_sequence_steps_delay CHECK (delay >= interval '0')
);

CREATE INDEX IF NOT EXISTS idx_sequence_steps_template ON sequence_steps (tenant_id, template_id);

CREATE OR REPLACE TRIGGER trg_sequence_steps_updated_at
    BEFORE UPDATE ON sequence_steps
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One contact's enrolment in a sequence.
CREATE TABLE IF NOT EXISTS sequence_runs (
    id           UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    UUID NOT NULL,
    sequence_id  UUID NOT NULL,
    contact_id   UUID NOT NULL,
    -- Text with a CHECK: 'exited' (replied, unsubscribed, removed) is not a
    -- workflow_status, and a run is never a draft.
    status       TEXT NOT NULL DEFAULT 'active',
    -- The step_number sent next.
    current_step INTEGER NOT NULL DEFAULT 1,
    next_run_at  TIMESTAMPTZ,
    enrolled_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    exit_reason  TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_sequence_runs PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_sequence_runs_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_sequence_runs_sequence FOREIGN KEY (tenant_id, sequence_id)
        REFERENCES sequences (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_sequence_runs_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_sequence_runs_status
        CHECK (status IN ('active', 'paused', 'completed', 'exited', 'failed')),
    CONSTRAINT ck_sequence_runs_current_step CHECK (current_step >= 1),
    CONSTRAINT ck_sequence_runs_next_run_at CHECK (status <> 'active' OR next_run_at IS NOT NULL),
    CONSTRAINT ck_sequence_runs_finished_at
        CHECK (status NOT IN ('completed', 'exited', 'failed') OR finished_at IS NOT NULL)
);

-- A contact is enrolled in a sequence at most once at a time; finished runs
-- stay as history and do not block a later re-enrolment.
CREATE UNIQUE INDEX IF NOT EXISTS uq_sequence_runs_live_contact
    ON sequence_runs (tenant_id, sequence_id, contact_id) WHERE status IN ('active', 'paused');
-- The sender's "what is due" across tenants; only active runs are indexed.
CREATE INDEX IF NOT EXISTS idx_sequence_runs_due ON sequence_runs (next_run_at) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS idx_sequence_runs_sequence_status
    ON sequence_runs (tenant_id, sequence_id, status);
CREATE INDEX IF NOT EXISTS idx_sequence_runs_contact ON sequence_runs (tenant_id, contact_id);

CREATE OR REPLACE TRIGGER trg_sequence_runs_updated_at
    BEFORE UPDATE ON sequence_runs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('010', 'sequences')
ON CONFLICT (version) DO NOTHING;
