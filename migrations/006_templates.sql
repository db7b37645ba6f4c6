-- ============================================================
-- Migration: 006_templates.sql
-- Purpose: Message templates
-- ============================================================

-- A template is a named message for one channel; its content lives in immutable,
-- numbered versions, so a sent message can always be traced to the exact text.
CREATE TABLE IF NOT EXISTS templates (
    id              UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id       UUID NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT,
    channel         channel_type NOT NULL,
    -- The version new sends use; NULL until the first version is published.
    current_version INTEGER,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_templates PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_templates_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT uq_templates_name UNIQUE (tenant_id, name),
    CONSTRAINT ck_templates_name CHECK (length(btrim(name)) > 0),
    CONSTRAINT ck_templates_current_version CHECK (current_version >= 1)
);

CREATE OR REPLACE TRIGGER trg_templates_updated_at
    BEFORE UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE IF NOT EXISTS template_versions (
    id           UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    UUID NOT NULL,
    template_id  UUID NOT NULL,
    version      INTEGER NOT NULL,
    -- E-mail only; other channels have no subject line.
    subject      TEXT,
    body         TEXT NOT NULL,
    body_format  TEXT NOT NULL DEFAULT 'text',
    -- The merge fields the body uses, e.g. ["first_name", "graduation_year"].
    variables    JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_by   UUID,
    published_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_template_versions PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_template_versions_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_template_versions_template FOREIGN KEY (tenant_id, template_id)
        REFERENCES templates (tenant_id, id) ON DELETE CASCADE,
    -- SET NULL (created_by): a plain SET NULL would null tenant_id too (PostgreSQL 15+).
    CONSTRAINT fk_template_versions_created_by FOREIGN KEY (tenant_id, created_by)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by),
    CONSTRAINT uq_template_versions_template_version UNIQUE (tenant_id, template_id, version),
    CONSTRAINT ck_template_versions_version CHECK (version >= 1),
    CONSTRAINT ck_template_versions_body_format CHECK (body_format IN ('text', 'html', 'markdown')),
    CONSTRAINT ck_template_versions_variables CHECK (jsonb_typeof(variables) = 'array')
);

CREATE INDEX IF NOT EXISTS idx_template_versions_created_by
    ON template_versions (tenant_id, created_by);

CREATE OR REPLACE TRIGGER trg_template_versions_updated_at
    BEFORE UPDATE ON template_versions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- templates.current_version must name an existing version of the same template.
-- Added after template_versions exists (the tables reference each other), hence
-- the guard: constraints have no IF NOT EXISTS. NO ACTION (not RESTRICT) so that
-- deleting a template, which cascades to its versions, still succeeds; deleting
-- only the current version is refused.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'fk_templates_current_version'
          AND conrelid = 'templates'::regclass
    ) THEN
        ALTER TABLE templates
            ADD CONSTRAINT fk_templates_current_version
            FOREIGN KEY (tenant_id, id, current_version)
            REFERENCES template_versions (tenant_id, template_id, version);
    END IF;
END $$;

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('006', 'templates')
ON CONFLICT (version) DO NOTHING;
