-- ============================================================
-- Migration: 004_contacts.sql
-- Purpose: Contact management
-- ============================================================

-- Each enum is created by the migration that first uses it. CREATE TYPE has no
-- IF NOT EXISTS: the guard looks the name up in pg_type within the current schema.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'contact_status' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE contact_status AS ENUM ('active', 'inactive', 'bounced', 'unsubscribed', 'archived');
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = 'channel_type' AND n.nspname = current_schema()
    ) THEN
        CREATE TYPE channel_type AS ENUM ('email', 'sms', 'whatsapp', 'push');
    END IF;
END $$;

-- ------------------------------------------------------------
-- contacts: the alumni (and other people) a tenant reaches out to
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS contacts (
    id                UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id         UUID NOT NULL,
    status            contact_status NOT NULL DEFAULT 'active',
    first_name        TEXT,
    last_name         TEXT,
    -- The preferred address, shown in lists; every address the contact is reached
    -- at (and matched by on inbound messages) is in channel_identifiers.
    email             CITEXT,
    phone             TEXT,
    graduation_year   SMALLINT,
    degree            TEXT,
    -- The contact's id in the tenant's source system (SIS, advancement CRM).
    external_id       TEXT,
    source            TEXT,
    -- Free-form fields kept as imported; attributes that segments filter on are
    -- one row each in contact_attributes.
    custom_attributes JSONB NOT NULL DEFAULT '{}'::jsonb,
    last_activity_at  TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_contacts PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_contacts_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    -- NULLs are distinct, so only contacts that have an external_id must differ.
    CONSTRAINT uq_contacts_external_id UNIQUE (tenant_id, external_id),
    CONSTRAINT ck_contacts_identifiable
        CHECK (coalesce(first_name, last_name, email::text, phone) IS NOT NULL),
    CONSTRAINT ck_contacts_email CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT ck_contacts_graduation_year CHECK (graduation_year BETWEEN 1900 AND 2100),
    CONSTRAINT ck_contacts_custom_attributes CHECK (jsonb_typeof(custom_attributes) = 'object')
);

CREATE INDEX IF NOT EXISTS idx_contacts_status ON contacts (tenant_id, status);
-- email is CITEXT, so this index serves case-insensitive look-ups without lower().
CREATE INDEX IF NOT EXISTS idx_contacts_email ON contacts (tenant_id, email);
CREATE INDEX IF NOT EXISTS idx_contacts_graduation_year ON contacts (tenant_id, graduation_year);
-- Alphabetical lists and name prefix search.
CREATE INDEX IF NOT EXISTS idx_contacts_name
    ON contacts (tenant_id, lower(last_name), lower(first_name));

CREATE OR REPLACE TRIGGER trg_contacts_updated_at
    BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- contact_tags: free labels, one row per contact and tag
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS contact_tags (
    tenant_id  UUID NOT NULL,
    contact_id UUID NOT NULL,
    -- CITEXT: "Class of 2010" and "class of 2010" are one tag.
    tag        CITEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A link table: the natural key is the primary key (see 003).
    CONSTRAINT pk_contact_tags PRIMARY KEY (tenant_id, contact_id, tag),
    CONSTRAINT fk_contact_tags_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_contact_tags_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_contact_tags_tag CHECK (tag = btrim(tag) AND length(tag) BETWEEN 1 AND 64)
);

-- "Contacts tagged X"; the primary key serves "tags of contact Y".
CREATE INDEX IF NOT EXISTS idx_contact_tags_tag ON contact_tags (tenant_id, tag);

CREATE OR REPLACE TRIGGER trg_contact_tags_updated_at
    BEFORE UPDATE ON contact_tags
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- channel_identifiers: every address a contact is reached at
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS channel_identifiers (
    id          UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id   UUID NOT NULL,
    contact_id  UUID NOT NULL,
    channel     channel_type NOT NULL,
    -- Normalised: e-mail lower-case, phone numbers E.164, push a device token.
    value       TEXT NOT NULL,
    is_primary  BOOLEAN NOT NULL DEFAULT false,
    verified_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_channel_identifiers PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_channel_identifiers_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_channel_identifiers_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    -- An address belongs to one contact per tenant: inbound messages match one person.
    CONSTRAINT uq_channel_identifiers_channel_value UNIQUE (tenant_id, channel, value),
    CONSTRAINT ck_channel_identifiers_value CHECK (length(value) BETWEEN 1 AND 512),
    -- Written per channel (not one CASE) so that a channel added to channel_type
    -- later is accepted without replacing these checks.
    CONSTRAINT ck_channel_identifiers_email
        CHECK (channel <> 'email' OR (value = lower(value) AND value ~ '^[^@[:space:]]+@[^@[:space:]]+$')),
    CONSTRAINT ck_channel_identifiers_phone
        CHECK (channel NOT IN ('sms', 'whatsapp') OR value ~ '^[+][1-9][0-9]{6,14}$')
);

-- At most one primary address per contact and channel (any number of others).
CREATE UNIQUE INDEX IF NOT EXISTS uq_channel_identifiers_primary
    ON channel_identifiers (tenant_id, contact_id, channel) WHERE is_primary;
CREATE INDEX IF NOT EXISTS idx_channel_identifiers_contact
    ON channel_identifiers (tenant_id, contact_id, channel);

CREATE OR REPLACE TRIGGER trg_channel_identifiers_updated_at
    BEFORE UPDATE ON channel_identifiers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- contact_attributes: one queryable key/value per contact
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS contact_attributes (
    id         UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id  UUID NOT NULL,
    contact_id UUID NOT NULL,
    key        TEXT NOT NULL,
    -- JSONB keeps the type (number, boolean, date as ISO text) for segment rules.
    value      JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_contact_attributes PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_contact_attributes_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_contact_attributes_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_contact_attributes_contact_key UNIQUE (tenant_id, contact_id, key),
    CONSTRAINT ck_contact_attributes_key CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$')
);

-- Segment rules filter by key across a tenant's contacts.
CREATE INDEX IF NOT EXISTS idx_contact_attributes_key ON contact_attributes (tenant_id, key);

CREATE OR REPLACE TRIGGER trg_contact_attributes_updated_at
    BEFORE UPDATE ON contact_attributes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- contact_consents: permission to contact, per channel and purpose
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS contact_consents (
    id         UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id  UUID NOT NULL,
    contact_id UUID NOT NULL,
    channel    channel_type NOT NULL,
    -- What the contact agreed to, e.g. 'newsletter', 'fundraising', 'events'.
    purpose    TEXT NOT NULL DEFAULT 'marketing',
    -- Text with a CHECK: the spec defines no consent enum.
    status     TEXT NOT NULL DEFAULT 'pending',
    -- Where the consent was given or withdrawn: 'signup_form', 'import', 'reply_stop', ...
    source     TEXT NOT NULL,
    granted_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_contact_consents PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_contact_consents_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_contact_consents_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT uq_contact_consents_contact_channel_purpose
        UNIQUE (tenant_id, contact_id, channel, purpose),
    CONSTRAINT ck_contact_consents_purpose CHECK (purpose ~ '^[a-z][a-z0-9_]{0,62}$'),
    CONSTRAINT ck_contact_consents_status CHECK (status IN ('granted', 'revoked', 'pending')),
    CONSTRAINT ck_contact_consents_granted_at CHECK (status <> 'granted' OR granted_at IS NOT NULL),
    CONSTRAINT ck_contact_consents_revoked_at CHECK (status <> 'revoked' OR revoked_at IS NOT NULL)
);

CREATE OR REPLACE TRIGGER trg_contact_consents_updated_at
    BEFORE UPDATE ON contact_consents
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ------------------------------------------------------------
-- contact_timeline_events: what happened to a contact, newest first
-- ------------------------------------------------------------
CREATE TABLE IF NOT EXISTS contact_timeline_events (
    id          UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id   UUID NOT NULL,
    contact_id  UUID NOT NULL,
    -- Dotted names such as 'email.opened', 'campaign.sent', 'inbox.replied'.
    event_type  TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Ids of the campaign, message or thread involved live here: an event may
    -- outlive them, so they are not foreign keys.
    payload     JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_contact_timeline_events PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_contact_timeline_events_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_contact_timeline_events_contact FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_contact_timeline_events_event_type
        CHECK (event_type ~ '^[a-z][a-z0-9_]*([.][a-z][a-z0-9_]*)*$'),
    CONSTRAINT ck_contact_timeline_events_payload CHECK (jsonb_typeof(payload) = 'object')
);

-- A contact's timeline, newest first (also serves the contact foreign key).
CREATE INDEX IF NOT EXISTS idx_contact_timeline_events_contact_occurred_at
    ON contact_timeline_events (tenant_id, contact_id, occurred_at DESC);

CREATE OR REPLACE TRIGGER trg_contact_timeline_events_updated_at
    BEFORE UPDATE ON contact_timeline_events
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('004', 'contacts')
ON CONFLICT (version) DO NOTHING;
