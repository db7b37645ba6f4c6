-- ============================================================
-- Migration: 005_segments.sql
-- Purpose: Audience segmentation
-- ============================================================

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'segment_type' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE segment_type AS ENUM ('static', 'dynamic', 'event_driven');
    END IF;
END $$;

-- static: members added by hand or import; dynamic: members computed from
-- `rules` (filters on contacts and contact_attributes); event_driven: members
-- added when an event matching `rules` happens.
CREATE TABLE IF NOT EXISTS segments (
    id               UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id        UUID NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT,
    segment_type     segment_type NOT NULL DEFAULT 'static',
    rules            JSONB,
    -- A cache of count(segment_members), refreshed with last_computed_at, so lists
    -- of segments do not count millions of rows.
    member_count     INTEGER NOT NULL DEFAULT 0,
    last_computed_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_segments PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_segments_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT uq_segments_name UNIQUE (tenant_id, name),
    CONSTRAINT ck_segments_name CHECK (length(btrim(name)) > 0),
    -- Only static segments may have no rules.
    CONSTRAINT ck_segments_rules
        CHECK (segment_type = 'static' OR jsonb_typeof(rules) = 'object'),
    CONSTRAINT ck_segments_member_count CHECK (member_count >= 0)
);

CREATE OR REPLACE TRIGGER trg_segments_updated_at
    BEFORE UPDATE ON segments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Membership: for dynamic segments, the materialised result of the last computation.
CREATE TABLE IF NOT EXISTS segment_members (
    tenant_id  UUID NOT NULL,
    segment_id UUID NOT NULL,
    contact_id UUID NOT NULL,
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- How the contact got in: 'manual', 'import', 'rule' or 'event'.
    source     TEXT NOT NULL DEFAULT 'manual',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A link table: the natural key is the primary key (see 003).
    CONSTRAINT pk_segment_members PRIMARY KEY (tenant_id, segment_id, contact_id),
    CONSTRAINT fk_segment_members_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_segment_members_segment FOREIGN KEY (tenant_id, segment_id)
        REFERENCES segments (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_segment_members_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_segment_members_source CHECK (source IN ('manual', 'import', 'rule', 'event'))
);

-- "Segments of contact Y" (and contact deletes); the primary key serves the segment side.
CREATE INDEX IF NOT EXISTS idx_segment_members_contact ON segment_members (tenant_id, contact_id);

CREATE OR REPLACE TRIGGER trg_segment_members_updated_at
    BEFORE UPDATE ON segment_members
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('005', 'segments')
ON CONFLICT (version) DO NOTHING;
