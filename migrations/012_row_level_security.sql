-- ============================================================
-- Migration: 012_row_level_security.sql
-- Purpose: Tenant isolation in the database: row-level security, application and worker roles
-- ============================================================

-- Composite (tenant_id, ...) keys stop a row of one tenant from pointing at another
-- tenant's row; row-level security stops a query that forgot `WHERE tenant_id = $1`
-- from reading or writing another tenant's rows at all.
--
-- The contract (README.md, "The application's contract"):
--   * the CRM's login role is granted alumoutreach_app, the job workers' login role
--     alumoutreach_worker; migrations keep running as the owner of the tables;
--   * every transaction of the application starts with
--       SELECT set_config('app.tenant_id', $1, true);   -- or: SET LOCAL app.tenant_id = '...'
--     transaction-local, so it works behind a pooler in transaction mode and cannot
--     leak into the next transaction of a pooled connection;
--   * without it (unset, or '' after a RESET or the end of the transaction that set
--     it) a SELECT returns no tenant rows, without an error, and no write succeeds.
--
-- FORCE ROW LEVEL SECURITY: deliberately not set. Its only effect is to put the tables'
-- owner under the policies too, and the owner is the role that runs migrations:
--   * it is no security boundary: the owner may ALTER TABLE ... NO FORCE (or DISABLE)
--     ROW LEVEL SECURITY or DROP POLICY at any time, and a superuser (the compose
--     environments' POSTGRES_USER) bypasses row-level security even when forced;
--   * it would break what the owner must do across tenants: pg_dump as the owner (it
--     sets row_security = off and fails on a forced table instead of dumping every
--     tenant's rows) and an operator's maintenance (purging finished jobs, say).
-- The protection against "the application connects as the owner" is the contract
-- above (and the tests that prove what the owner sees), not FORCE.

-- ------------------------------------------------------------
-- Roles: cluster-wide, without passwords, without LOGIN
-- ------------------------------------------------------------
-- alumoutreach_app: the privileges and policies of the CRM; grant it to the
--   application's login role (GRANT alumoutreach_app TO crm_web).
-- alumoutreach_worker: alumoutreach_app, plus every tenant's rows of pipeline_jobs and
--   pipeline_failures (read and update, for the dequeue); grant it to the workers'
--   login role. Nothing else of any tenant without app.tenant_id.
-- Neither may bypass row-level security (no SUPERUSER, no BYPASSRLS): an existing role
-- that does stops this migration rather than silently leaving a hole.
--
-- Roles belong to the server, not to the database: another database of the same server
-- may have created them already, or be creating them right now (a concurrent CREATE
-- ROLE ends in unique_violation once the other transaction commits). Creating a role
-- takes CREATEROLE: a superuser, or a managed service's administrator role, has it; a
-- migration owner without it needs the roles created beforehand, and the error says how.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alumoutreach_app') THEN
        BEGIN
            CREATE ROLE alumoutreach_app
                NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role alumoutreach_app does not exist and % may not create it',
                    current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Have an administrator run: CREATE ROLE alumoutreach_app NOLOGIN; '
                              'CREATE ROLE alumoutreach_worker NOLOGIN IN ROLE alumoutreach_app; '
                              'then run the migrations again.';
        END;
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alumoutreach_worker') THEN
        BEGIN
            CREATE ROLE alumoutreach_worker
                NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role alumoutreach_worker does not exist and % may not create it',
                    current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Have an administrator run: CREATE ROLE alumoutreach_worker '
                              'NOLOGIN IN ROLE alumoutreach_app; then run the migrations again.';
        END;
    END IF;
END $$;

DO $$
BEGIN
    -- The worker is the application plus the queue.
    IF NOT EXISTS (
        SELECT 1 FROM pg_auth_members
        WHERE roleid = 'alumoutreach_app'::regrole AND member = 'alumoutreach_worker'::regrole
    ) THEN
        BEGIN
            GRANT alumoutreach_app TO alumoutreach_worker;
        EXCEPTION
            WHEN unique_violation THEN
                NULL;  -- granted meanwhile by a migration of another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION '% may not make alumoutreach_worker a member of alumoutreach_app',
                    current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Have an administrator run: GRANT alumoutreach_app TO '
                              'alumoutreach_worker; then run the migrations again.';
        END;
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_roles
        WHERE rolname IN ('alumoutreach_app', 'alumoutreach_worker') AND (rolsuper OR rolbypassrls)
    ) THEN
        RAISE EXCEPTION 'alumoutreach_app or alumoutreach_worker bypasses row-level security'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Have an administrator run: ALTER ROLE alumoutreach_app NOSUPERUSER '
                      'NOBYPASSRLS; ALTER ROLE alumoutreach_worker NOSUPERUSER NOBYPASSRLS;';
    END IF;
END $$;

-- ------------------------------------------------------------
-- Privileges
-- ------------------------------------------------------------
-- What the CRM does: read and write rows (the policies below decide whose). No
-- TRUNCATE (it ignores row-level security), no REFERENCES, no TRIGGER. The migration
-- tracking tables are readable (which schema version am I on?) but written by the
-- migrations alone, and a tenant row is deleted by an operator, as the owner: its
-- ON DELETE CASCADE erases all of the tenant's data.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO alumoutreach_app;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations, schema_migrations_audit FROM alumoutreach_app;
REVOKE DELETE ON tenants FROM alumoutreach_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO alumoutreach_app;
-- Tables and sequences that later migrations create (as the role that runs this one)
-- get the same grants; each new tenant table still needs its policy (see README.md).
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO alumoutreach_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO alumoutreach_app;

-- ------------------------------------------------------------
-- The current tenant
-- ------------------------------------------------------------
-- app.tenant_id of the current transaction as a uuid, NULL when it is not set:
-- current_setting(..., true) gives NULL for a setting never defined in the session and
-- '' after a RESET or after the transaction that set it locally ended (''::uuid would
-- be an error). `tenant_id = NULL` is never true, so no tenant means no rows: the
-- policies fail closed. A value that is not a uuid is an error (22P02), not a match.
-- A STABLE plain-SQL function is inlined by the planner, so the policies' predicate
-- becomes an index condition on the (tenant_id, ...) keys, evaluated once per scan.
CREATE OR REPLACE FUNCTION current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid
$$;

-- ------------------------------------------------------------
-- Row-level security: one policy per tenant table, USING and WITH CHECK
-- ------------------------------------------------------------
-- USING filters what alumoutreach_app (and so alumoutreach_worker) reads, updates and
-- deletes; WITH CHECK refuses (42501) an INSERT or UPDATE whose row would belong to
-- another tenant. Every role not named in a policy sees nothing (the default is deny);
-- the owner and superusers bypass the policies (see FORCE above). Each block is
-- guarded so that running this file again takes no lock (ENABLE ROW LEVEL SECURITY
-- and CREATE POLICY take ACCESS EXCLUSIVE locks): the compose loop re-runs every file.

-- tenants: a tenant sees and changes its own row only. Creating a tenant is
-- possible for the application too: set app.tenant_id to the new id first.
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'tenants'::regclass) THEN
        ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'tenants'::regclass AND polname = 'pol_tenants_tenant'
    ) THEN
        CREATE POLICY pol_tenants_tenant ON tenants
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (id = current_tenant_id()) WITH CHECK (id = current_tenant_id());
    END IF;
END $$;

-- The tables of 003_auth.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'users'::regclass) THEN
        ALTER TABLE users ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'users'::regclass AND polname = 'pol_users_tenant'
    ) THEN
        CREATE POLICY pol_users_tenant ON users
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'roles'::regclass) THEN
        ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'roles'::regclass AND polname = 'pol_roles_tenant'
    ) THEN
        CREATE POLICY pol_roles_tenant ON roles
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'user_roles'::regclass) THEN
        ALTER TABLE user_roles ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'user_roles'::regclass AND polname = 'pol_user_roles_tenant'
    ) THEN
        CREATE POLICY pol_user_roles_tenant ON user_roles
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'role_permissions'::regclass) THEN
        ALTER TABLE role_permissions ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'role_permissions'::regclass AND polname = 'pol_role_permissions_tenant'
    ) THEN
        CREATE POLICY pol_role_permissions_tenant ON role_permissions
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- The tables of 004_contacts.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'contacts'::regclass) THEN
        ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'contacts'::regclass AND polname = 'pol_contacts_tenant'
    ) THEN
        CREATE POLICY pol_contacts_tenant ON contacts
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'contact_tags'::regclass) THEN
        ALTER TABLE contact_tags ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'contact_tags'::regclass AND polname = 'pol_contact_tags_tenant'
    ) THEN
        CREATE POLICY pol_contact_tags_tenant ON contact_tags
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'channel_identifiers'::regclass) THEN
        ALTER TABLE channel_identifiers ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'channel_identifiers'::regclass AND polname = 'pol_channel_identifiers_tenant'
    ) THEN
        CREATE POLICY pol_channel_identifiers_tenant ON channel_identifiers
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'contact_attributes'::regclass) THEN
        ALTER TABLE contact_attributes ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'contact_attributes'::regclass AND polname = 'pol_contact_attributes_tenant'
    ) THEN
        CREATE POLICY pol_contact_attributes_tenant ON contact_attributes
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'contact_consents'::regclass) THEN
        ALTER TABLE contact_consents ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'contact_consents'::regclass AND polname = 'pol_contact_consents_tenant'
    ) THEN
        CREATE POLICY pol_contact_consents_tenant ON contact_consents
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'contact_timeline_events'::regclass) THEN
        ALTER TABLE contact_timeline_events ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'contact_timeline_events'::regclass AND polname = 'pol_contact_timeline_events_tenant'
    ) THEN
        CREATE POLICY pol_contact_timeline_events_tenant ON contact_timeline_events
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- The tables of 005_segments.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'segments'::regclass) THEN
        ALTER TABLE segments ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'segments'::regclass AND polname = 'pol_segments_tenant'
    ) THEN
        CREATE POLICY pol_segments_tenant ON segments
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'segment_members'::regclass) THEN
        ALTER TABLE segment_members ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'segment_members'::regclass AND polname = 'pol_segment_members_tenant'
    ) THEN
        CREATE POLICY pol_segment_members_tenant ON segment_members
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- The tables of 006_templates.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'templates'::regclass) THEN
        ALTER TABLE templates ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'templates'::regclass AND polname = 'pol_templates_tenant'
    ) THEN
        CREATE POLICY pol_templates_tenant ON templates
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'template_versions'::regclass) THEN
        ALTER TABLE template_versions ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'template_versions'::regclass AND polname = 'pol_template_versions_tenant'
    ) THEN
        CREATE POLICY pol_template_versions_tenant ON template_versions
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- The tables of 007_campaigns.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'campaigns'::regclass) THEN
        ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'campaigns'::regclass AND polname = 'pol_campaigns_tenant'
    ) THEN
        CREATE POLICY pol_campaigns_tenant ON campaigns
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'campaign_runs'::regclass) THEN
        ALTER TABLE campaign_runs ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'campaign_runs'::regclass AND polname = 'pol_campaign_runs_tenant'
    ) THEN
        CREATE POLICY pol_campaign_runs_tenant ON campaign_runs
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'campaign_messages'::regclass) THEN
        ALTER TABLE campaign_messages ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'campaign_messages'::regclass AND polname = 'pol_campaign_messages_tenant'
    ) THEN
        CREATE POLICY pol_campaign_messages_tenant ON campaign_messages
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- The tables of 008_inbox.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'inbox_threads'::regclass) THEN
        ALTER TABLE inbox_threads ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'inbox_threads'::regclass AND polname = 'pol_inbox_threads_tenant'
    ) THEN
        CREATE POLICY pol_inbox_threads_tenant ON inbox_threads
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'inbox_messages'::regclass) THEN
        ALTER TABLE inbox_messages ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'inbox_messages'::regclass AND polname = 'pol_inbox_messages_tenant'
    ) THEN
        CREATE POLICY pol_inbox_messages_tenant ON inbox_messages
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'inbox_activities'::regclass) THEN
        ALTER TABLE inbox_activities ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'inbox_activities'::regclass AND polname = 'pol_inbox_activities_tenant'
    ) THEN
        CREATE POLICY pol_inbox_activities_tenant ON inbox_activities
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- The tables of 009_workflows.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'workflows'::regclass) THEN
        ALTER TABLE workflows ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'workflows'::regclass AND polname = 'pol_workflows_tenant'
    ) THEN
        CREATE POLICY pol_workflows_tenant ON workflows
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'workflow_runs'::regclass) THEN
        ALTER TABLE workflow_runs ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'workflow_runs'::regclass AND polname = 'pol_workflow_runs_tenant'
    ) THEN
        CREATE POLICY pol_workflow_runs_tenant ON workflow_runs
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'workflow_node_runs'::regclass) THEN
        ALTER TABLE workflow_node_runs ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'workflow_node_runs'::regclass AND polname = 'pol_workflow_node_runs_tenant'
    ) THEN
        CREATE POLICY pol_workflow_node_runs_tenant ON workflow_node_runs
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- The tables of 010_sequences.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'sequences'::regclass) THEN
        ALTER TABLE sequences ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'sequences'::regclass AND polname = 'pol_sequences_tenant'
    ) THEN
        CREATE POLICY pol_sequences_tenant ON sequences
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'sequence_steps'::regclass) THEN
        ALTER TABLE sequence_steps ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'sequence_steps'::regclass AND polname = 'pol_sequence_steps_tenant'
    ) THEN
        CREATE POLICY pol_sequence_steps_tenant ON sequence_steps
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'sequence_runs'::regclass) THEN
        ALTER TABLE sequence_runs ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'sequence_runs'::regclass AND polname = 'pol_sequence_runs_tenant'
    ) THEN
        CREATE POLICY pol_sequence_runs_tenant ON sequence_runs
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- The tables of 011_pipeline.sql
DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'pipeline_jobs'::regclass) THEN
        ALTER TABLE pipeline_jobs ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'pipeline_jobs'::regclass AND polname = 'pol_pipeline_jobs_tenant'
    ) THEN
        CREATE POLICY pol_pipeline_jobs_tenant ON pipeline_jobs
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

DO $$
BEGIN
    IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = 'pipeline_failures'::regclass) THEN
        ALTER TABLE pipeline_failures ENABLE ROW LEVEL SECURITY;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'pipeline_failures'::regclass AND polname = 'pol_pipeline_failures_tenant'
    ) THEN
        CREATE POLICY pol_pipeline_failures_tenant ON pipeline_failures
            AS PERMISSIVE FOR ALL TO alumoutreach_app
            USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
    END IF;
END $$;

-- ------------------------------------------------------------
-- The job queue: workers serve every tenant
-- ------------------------------------------------------------
-- The dequeue (011_pipeline.sql) runs with no tenant set and takes the next runnable
-- jobs of all tenants; these permissive policies add every tenant's rows to what
-- alumoutreach_worker reads and updates there (SELECT ... FOR UPDATE needs both). It
-- inserts a pipeline_failures row, and reads or writes any other table, the way the
-- application does: with app.tenant_id set to the job's tenant_id.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'pipeline_jobs'::regclass AND polname = 'pol_pipeline_jobs_worker_read'
    ) THEN
        CREATE POLICY pol_pipeline_jobs_worker_read ON pipeline_jobs
            AS PERMISSIVE FOR SELECT TO alumoutreach_worker
            USING (true);
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'pipeline_jobs'::regclass AND polname = 'pol_pipeline_jobs_worker_update'
    ) THEN
        CREATE POLICY pol_pipeline_jobs_worker_update ON pipeline_jobs
            AS PERMISSIVE FOR UPDATE TO alumoutreach_worker
            USING (true) WITH CHECK (true);
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'pipeline_failures'::regclass
          AND polname = 'pol_pipeline_failures_worker_read'
    ) THEN
        CREATE POLICY pol_pipeline_failures_worker_read ON pipeline_failures
            AS PERMISSIVE FOR SELECT TO alumoutreach_worker
            USING (true);
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_policy
        WHERE polrelid = 'pipeline_failures'::regclass
          AND polname = 'pol_pipeline_failures_worker_update'
    ) THEN
        CREATE POLICY pol_pipeline_failures_worker_update ON pipeline_failures
            AS PERMISSIVE FOR UPDATE TO alumoutreach_worker
            USING (true) WITH CHECK (true);
    END IF;
END $$;

-- The worker's UPDATE policy cannot say "the tenant stays" (WITH CHECK sees the new
-- row only), so these triggers do: a queue row never moves to another tenant, whoever
-- updates it. The same SQLSTATE as a policy violation.
CREATE OR REPLACE FUNCTION refuse_tenant_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a row of % cannot move to another tenant', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'tenant_id never changes: create the row in the other tenant instead';
END;
$$;

CREATE OR REPLACE TRIGGER trg_pipeline_jobs_tenant_fixed
    BEFORE UPDATE OF tenant_id ON pipeline_jobs
    FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION refuse_tenant_change();

CREATE OR REPLACE TRIGGER trg_pipeline_failures_tenant_fixed
    BEFORE UPDATE OF tenant_id ON pipeline_failures
    FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION refuse_tenant_change();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('012', 'row_level_security')
ON CONFLICT (version) DO NOTHING;
