-- ============================================================
-- Migration: 011_pipeline.sql
-- Purpose: Background jobs
-- ============================================================

-- job_status is ordered pending, processing, completed, failed, retrying: a range
-- test such as `status < 'processing'` would miss 'retrying'. Always use IN lists.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'job_status' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE job_status AS ENUM ('pending', 'processing', 'completed', 'failed', 'retrying');
    END IF;
END $$;

-- ------------------------------------------------------------
-- pipeline_jobs: a PostgreSQL job queue
-- ------------------------------------------------------------
-- Workers dequeue across tenants, lowest priority value first:
--
--   WITH next AS (
--       SELECT id, tenant_id FROM pipeline_jobs
--       WHERE queue = $1 AND status IN ('pending', 'retrying') AND run_at <= now()
--       ORDER BY priority, run_at, id
--       LIMIT $2
--       FOR UPDATE SKIP LOCKED
--   )
--   UPDATE pipeline_jobs j
--   SET status = 'processing', locked_at = now(), locked_by = $3, attempts = j.attempts + 1
--   FROM next WHERE j.tenant_id = next.tenant_id AND j.id = next.id
--   RETURNING j.*;
--
-- A failed attempt is recorded in pipeline_failures and the job goes back to
-- 'retrying' with run_at pushed back (exponential backoff with a cap, computed by
-- the worker), or to 'failed' once attempts reaches max_attempts. Enqueuers
-- notify workers themselves (pg_notify after the insert); there is deliberately
-- no per-row NOTIFY trigger.
--
-- Tenancy: every job belongs to a tenant (tenant_id NOT NULL, composite keys,
-- deleted with its tenant), like every other table. But the dequeue index does
-- not lead with tenant_id: workers serve all tenants from one queue, and fairness
-- between tenants is a matter of priority and run_at, not of the index.
-- Citus: FOR UPDATE works on a single shard only, so a queue dequeued across
-- tenants cannot be a distributed table: pipeline_jobs and pipeline_failures stay
-- local tables on the coordinator even when the rest is distributed by tenant_id.
CREATE TABLE IF NOT EXISTS pipeline_jobs (
    id           UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    UUID NOT NULL,
    queue        TEXT NOT NULL DEFAULT 'default',
    -- The handler the worker runs, e.g. 'campaigns.send_run', 'segments.recompute'.
    task_name    TEXT NOT NULL,
    payload      JSONB NOT NULL DEFAULT '{}'::jsonb,
    status       job_status NOT NULL DEFAULT 'pending',
    -- Lower runs first (ORDER BY priority); 0 is normal.
    priority     SMALLINT NOT NULL DEFAULT 0,
    run_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Attempts started so far (the dequeue bumps it).
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    locked_at    TIMESTAMPTZ,
    locked_by    TEXT,
    last_error   TEXT,
    -- Optional: at most one live job per tenant, queue and key (see the index below).
    dedup_key    TEXT,
    completed_at TIMESTAMPTZ,
    failed_at    TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_pipeline_jobs PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_pipeline_jobs_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT ck_pipeline_jobs_queue CHECK (queue ~ '^[a-z][a-z0-9_]{0,62}$'),
    CONSTRAINT ck_pipeline_jobs_task_name CHECK (task_name ~ '^[a-z][a-z0-9_]*([.][a-z][a-z0-9_]*)*$'),
    CONSTRAINT ck_pipeline_jobs_payload CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT ck_pipeline_jobs_max_attempts CHECK (max_attempts >= 1),
    CONSTRAINT ck_pipeline_jobs_attempts CHECK (attempts BETWEEN 0 AND max_attempts),
    -- A job is processing exactly when a worker holds it.
    CONSTRAINT ck_pipeline_jobs_locked CHECK (
        (status IN ('processing') AND locked_at IS NOT NULL AND locked_by IS NOT NULL)
        OR (status IN ('pending', 'completed', 'failed', 'retrying')
            AND locked_at IS NULL AND locked_by IS NULL)
    ),
    CONSTRAINT ck_pipeline_jobs_completed_at
        CHECK (status NOT IN ('completed') OR completed_at IS NOT NULL),
    CONSTRAINT ck_pipeline_jobs_failed_at CHECK (status NOT IN ('failed') OR failed_at IS NOT NULL)
);

-- Serves the dequeue exactly: equality on queue, then the ORDER BY, and only
-- the rows that can be dequeued, so it stays small however many jobs finished.
CREATE INDEX IF NOT EXISTS idx_pipeline_jobs_dequeue
    ON pipeline_jobs (queue, priority, run_at, id) WHERE status IN ('pending', 'retrying');
-- Deduplication among live jobs only: a finished job does not block a new one
-- with the same key. ON CONFLICT against it must repeat the predicate:
--   ON CONFLICT (tenant_id, queue, dedup_key)
--   WHERE dedup_key IS NOT NULL AND status IN ('pending', 'processing', 'retrying') DO NOTHING
CREATE UNIQUE INDEX IF NOT EXISTS uq_pipeline_jobs_dedup_key
    ON pipeline_jobs (tenant_id, queue, dedup_key)
    WHERE dedup_key IS NOT NULL AND status IN ('pending', 'processing', 'retrying');
-- The reaper finds jobs whose worker died (locked for too long).
CREATE INDEX IF NOT EXISTS idx_pipeline_jobs_locked_at
    ON pipeline_jobs (locked_at) WHERE status IN ('processing');
-- Retention: purge completed jobs older than N days.
CREATE INDEX IF NOT EXISTS idx_pipeline_jobs_completed_at
    ON pipeline_jobs (completed_at) WHERE status IN ('completed');

CREATE OR REPLACE TRIGGER trg_pipeline_jobs_updated_at
    BEFORE UPDATE ON pipeline_jobs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- pipeline_failures: every failed attempt, not just the last error
-- ------------------------------------------------------------
-- pipeline_jobs.last_error is overwritten by each attempt; this keeps them all.
-- Purging a job purges its failures (CASCADE).
CREATE TABLE IF NOT EXISTS pipeline_failures (
    id            UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id     UUID NOT NULL,
    job_id        UUID NOT NULL,
    attempt       INTEGER NOT NULL,
    error         TEXT NOT NULL,
    -- Exception class, traceback, provider response.
    error_details JSONB NOT NULL DEFAULT '{}'::jsonb,
    failed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    worker        TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_pipeline_failures PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_pipeline_failures_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_pipeline_failures_job FOREIGN KEY (tenant_id, job_id)
        REFERENCES pipeline_jobs (tenant_id, id) ON DELETE CASCADE,
    -- Also the index of the job key.
    CONSTRAINT uq_pipeline_failures_job_attempt UNIQUE (tenant_id, job_id, attempt),
    CONSTRAINT ck_pipeline_failures_attempt CHECK (attempt >= 1),
    CONSTRAINT ck_pipeline_failures_error_details CHECK (jsonb_typeof(error_details) = 'object')
);

CREATE OR REPLACE TRIGGER trg_pipeline_failures_updated_at
    BEFORE UPDATE ON pipeline_failures
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('011', 'pipeline')
ON CONFLICT (version) DO NOTHING;
