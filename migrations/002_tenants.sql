-- ============================================================
-- Migration: 002_tenants.sql
-- Purpose: Multi-tenant foundation
-- ============================================================

-- One row per customer organisation (a university's alumni office, say).
-- Every tenant-scoped table from 003 on carries tenant_id with a foreign key here
-- (ON DELETE CASCADE: deleting a tenant erases its data), a primary key of
-- (tenant_id, id), unique constraints that include tenant_id, and composite
-- foreign keys (tenant_id, x_id) between tenant-scoped tables, so the database
-- itself refuses a row of one tenant that points at another tenant's row.
-- alumdb: allow tenant-scoped because this is the tenant table itself
CREATE TABLE IF NOT EXISTS tenants (
    id         UUID NOT NULL DEFAULT gen_random_uuid(),
    -- URL-safe handle (subdomain, API paths): lower-case letters, digits, inner hyphens.
    slug       TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'active',
    settings   JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_tenants PRIMARY KEY (id),
    CONSTRAINT uq_tenants_slug UNIQUE (slug),
    CONSTRAINT ck_tenants_slug CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT ck_tenants_name CHECK (length(btrim(name)) > 0),
    -- Text with a CHECK rather than an enum: the spec defines no tenant enum.
    CONSTRAINT ck_tenants_status CHECK (status IN ('active', 'suspended', 'closed')),
    CONSTRAINT ck_tenants_settings CHECK (jsonb_typeof(settings) = 'object')
);

CREATE OR REPLACE TRIGGER trg_tenants_updated_at
    BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('002', 'tenants')
ON CONFLICT (version) DO NOTHING;
