-- ============================================================
-- Migration: 009_workflows.sql
-- Purpose: Automation workflows
-- ============================================================

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'workflow_status' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE workflow_status AS ENUM ('draft', 'active', 'paused', 'archived');
    END IF;
END $$;

-- ------------------------------------------------------------
-- workflows: a trigger plus a graph of nodes (send, wait, branch, update contact)
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS workflows (
    id                 UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id          UUID NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT,
    status             workflow_status NOT NULL DEFAULT 'draft',
    -- Bumped on every published edit; runs record the version they started on.
    version            INTEGER NOT NULL DEFAULT 1,
    -- What starts a run, e.g. {"event": "contact.created", "segment_id": "..."}.
    -- A draft may not have one yet.
    trigger_definition JSONB,
    graph              JSONB NOT NULL DEFAULT '{"nodes": [], "edges": []}'::jsonb,
    activated_at       TIMESTAMPTZ,
    created_by         UUID,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_workflows PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_workflows_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_workflows_created_by FOREIGN KEY (tenant_id, created_by)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by),
    CONSTRAINT uq_workflows_name UNIQUE (tenant_id, name),
    CONSTRAINT ck_workflows_name CHECK (length(btrim(name)) > 0),
    CONSTRAINT ck_workflows_version CHECK (version >= 1),
    CONSTRAINT ck_workflows_trigger_definition
        CHECK (status = 'draft' OR jsonb_typeof(trigger_definition) = 'object'),
    CONSTRAINT ck_workflows_graph CHECK (jsonb_typeof(graph) = 'object')
);

CREATE INDEX IF NOT EXISTS idx_workflows_status ON workflows (tenant_id, status);
CREATE INDEX IF NOT EXISTS idx_workflows_created_by ON workflows (tenant_id, created_by);

CREATE OR REPLACE TRIGGER trg_workflows_updated_at
    BEFORE UPDATE ON workflows
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- workflow_runs: one execution of a workflow, usually for one contact
-- ------------------------------------------------------------
-- status is text with a CHECK, not job_status: a run also waits (on a delay
-- node, for days) and can be cancelled, which job_status cannot say.
CREATE TABLE IF NOT EXISTS workflow_runs (
    id               UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id        UUID NOT NULL,
    workflow_id      UUID NOT NULL,
    workflow_version INTEGER NOT NULL DEFAULT 1,
    -- NULL for runs not about one contact (scheduled workflows).
    contact_id       UUID,
    status           TEXT NOT NULL DEFAULT 'pending',
    -- The graph node the run is at (a key of workflows.graph).
    current_node     TEXT,
    -- When the executor picks the run up next (after a delay node, a retry).
    next_run_at      TIMESTAMPTZ,
    context          JSONB NOT NULL DEFAULT '{}'::jsonb,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_workflow_runs PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_workflow_runs_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_workflow_runs_workflow FOREIGN KEY (tenant_id, workflow_id)
        REFERENCES workflows (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_workflow_runs_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    -- The target of workflow_node_runs' run key: a node run's run belongs to its workflow.
    CONSTRAINT uq_workflow_runs_workflow_id UNIQUE (tenant_id, workflow_id, id),
    CONSTRAINT ck_workflow_runs_workflow_version CHECK (workflow_version >= 1),
    CONSTRAINT ck_workflow_runs_status
        CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled')),
    CONSTRAINT ck_workflow_runs_next_run_at
        CHECK (status NOT IN ('pending', 'waiting') OR next_run_at IS NOT NULL),
    CONSTRAINT ck_workflow_runs_finished_at
        CHECK (status NOT IN ('completed', 'failed', 'cancelled') OR finished_at IS NOT NULL),
    CONSTRAINT ck_workflow_runs_context CHECK (jsonb_typeof(context) = 'object')
);

-- The executor's "what is due" across tenants; only runs waiting to run are indexed.
CREATE INDEX IF NOT EXISTS idx_workflow_runs_due
    ON workflow_runs (next_run_at) WHERE status IN ('pending', 'waiting');
CREATE INDEX IF NOT EXISTS idx_workflow_runs_contact ON workflow_runs (tenant_id, contact_id);

CREATE OR REPLACE TRIGGER trg_workflow_runs_updated_at
    BEFORE UPDATE ON workflow_runs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- workflow_node_runs: each node a run executed (a node may run more than once)
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS workflow_node_runs (
    id              UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id       UUID NOT NULL,
    workflow_id     UUID NOT NULL,
    workflow_run_id UUID NOT NULL,
    node_key        TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    output          JSONB,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_workflow_node_runs PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_workflow_node_runs_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_workflow_node_runs_workflow FOREIGN KEY (tenant_id, workflow_id)
        REFERENCES workflows (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_workflow_node_runs_run FOREIGN KEY (tenant_id, workflow_id, workflow_run_id)
        REFERENCES workflow_runs (tenant_id, workflow_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_workflow_node_runs_node_key CHECK (length(node_key) BETWEEN 1 AND 128),
    CONSTRAINT ck_workflow_node_runs_status
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped')),
    CONSTRAINT ck_workflow_node_runs_attempts CHECK (attempts >= 0),
    CONSTRAINT ck_workflow_node_runs_finished_at CHECK (finished_at >= started_at)
);

-- A run's steps in order (also both workflow keys).
CREATE INDEX IF NOT EXISTS idx_workflow_node_runs_run_started_at
    ON workflow_node_runs (tenant_id, workflow_id, workflow_run_id, started_at);

CREATE OR REPLACE TRIGGER trg_workflow_node_runs_updated_at
    BEFORE UPDATE ON workflow_node_runs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('009', 'workflows')
ON CONFLICT (version) DO NOTHING;
