-- ============================================================
-- Migration: 001_init.sql
-- Purpose: Extensions, tracking table, helpers
-- ============================================================

-- citext: case-insensitive e-mail addresses (users.email, contacts.email), so
-- uniqueness and look-ups ignore case without lower() in every query and index.
-- gen_random_uuid() is built into PostgreSQL 13+, so pgcrypto is not needed.
CREATE EXTENSION IF NOT EXISTS citext;

-- Versions are digit strings ('001' ... '999', '1000'): this collation compares
-- runs of digits as numbers, so the spec's `ORDER BY version` lists 1000 after 999.
CREATE COLLATION IF NOT EXISTS "numeric" (provider = icu, locale = 'und-u-kn-true');

-- ------------------------------------------------------------
-- Migration tracking
-- ------------------------------------------------------------

-- alumdb: allow tenant-scoped because it records the schema's own history, which is shared by every tenant
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     VARCHAR(16) COLLATE "numeric" NOT NULL,
    name        VARCHAR(255) NOT NULL,
    executed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Filled by the runner (invoke migrate): SHA-256 of the file, so an edited
    -- deployed migration is refused. NULL for rows written by the compose loop
    -- until the runner adopts them.
    checksum    CHAR(64),
    duration_ms INTEGER,
    applied_by  TEXT NOT NULL DEFAULT current_user,
    CONSTRAINT pk_schema_migrations PRIMARY KEY (version),
    CONSTRAINT ck_schema_migrations_version CHECK (version ~ '^[0-9]{3,}$'),
    CONSTRAINT ck_schema_migrations_checksum CHECK (checksum ~ '^[0-9a-f]{64}$'),
    CONSTRAINT ck_schema_migrations_duration_ms CHECK (duration_ms >= 0)
);

-- A tracking table created by an older version of this file (the spec's three
-- columns) gets the runner's columns and their checks.
ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum CHAR(64);
ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS duration_ms INTEGER;
-- current_user is stable, not volatile: PostgreSQL 11+ stores the default once and
-- does not rewrite the table (which has one row per migration anyway).
-- squawk-ignore adding-field-with-default
ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS applied_by TEXT NOT NULL DEFAULT current_user;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'ck_schema_migrations_checksum'
          AND conrelid = 'schema_migrations'::regclass
    ) THEN
        ALTER TABLE schema_migrations
            ADD CONSTRAINT ck_schema_migrations_checksum CHECK (checksum ~ '^[0-9a-f]{64}$');
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'ck_schema_migrations_duration_ms'
          AND conrelid = 'schema_migrations'::regclass
    ) THEN
        ALTER TABLE schema_migrations
            ADD CONSTRAINT ck_schema_migrations_duration_ms CHECK (duration_ms >= 0);
    END IF;
END $$;

-- Every deliberate change to a recorded row (a checksum adopted from a compose-loop
-- run, an edit accepted with `invoke accept-checksum`): who, when and why.
-- Same definition as alumdb.runner.TRACKING_UPGRADE, which creates it on databases
-- migrated before this table existed.
-- alumdb: allow tenant-scoped because it audits the schema's own history, which is shared by every tenant
CREATE TABLE IF NOT EXISTS schema_migrations_audit (
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    version      VARCHAR(16) NOT NULL,
    event        TEXT NOT NULL,
    old_checksum CHAR(64),
    new_checksum CHAR(64),
    reason       TEXT,
    actor        TEXT NOT NULL DEFAULT current_user,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_schema_migrations_audit PRIMARY KEY (id),
    CONSTRAINT ck_schema_migrations_audit_event CHECK (event IN ('adopted', 'checksum_accepted'))
);

-- ------------------------------------------------------------
-- Helpers
-- ------------------------------------------------------------

-- BEFORE UPDATE trigger function for every table with updated_at. greatest()
-- keeps the value increasing even when one transaction (where now() is fixed)
-- updates a row twice, so "changed since" readers never miss the second change.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := greatest(now(), OLD.updated_at + interval '1 millisecond');
    RETURN NEW;
END;
$$;

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('001', 'init')
ON CONFLICT (version) DO NOTHING;
